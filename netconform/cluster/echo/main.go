// nc-echo is netconform's test server. It answers exactly what the checks read, over HTTP and UDP: its hostname,
// the client's address, an echo, the size of an upload. No handler runs a command, reads a file, redirects or ends
// the process, and every other path is a 404, so a NodePort, LoadBalancer or Ingress that exposes it offers no way
// in (agnhost netexec, which it replaces behind Services, serves /shell and /exit).
//
// HTTP (--http-port): /hostname, /clientip (ip:port as the server saw it), /echo?msg=, /upload (reads the body,
// answers its size), /healthz. With --name, the name is the answer on / and under each of --name-paths (Ingress
// backends: a misrouted request is told apart by the name in its answer).
// UDP (--udp-port): "hostname", "clientip", "echo <text>".
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	httpPort := flag.Int("http-port", 8080, "HTTP port (0: none)")
	udpPort := flag.Int("udp-port", 0, "UDP port (0: none)")
	name := flag.String("name", "", "answer this name on / and under --name-paths")
	namePaths := flag.String("name-paths", "", "comma-separated path prefixes answered with --name")
	flag.Parse()
	host, _ := os.Hostname()
	if *udpPort != 0 {
		go serveUDP(*udpPort, host)
	}
	if *httpPort == 0 {
		select {}
	}
	mux := http.NewServeMux()
	text := func(w http.ResponseWriter, s string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, s)
	}
	mux.HandleFunc("/hostname", func(w http.ResponseWriter, r *http.Request) { text(w, host) })
	mux.HandleFunc("/clientip", func(w http.ResponseWriter, r *http.Request) { text(w, r.RemoteAddr) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { text(w, r.URL.Query().Get("msg")) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { text(w, "ok") })
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, fmt.Sprintf("read %d bytes, then: %v", n, err), http.StatusBadRequest)
			return
		}
		text(w, fmt.Sprintf("%d", n))
	})
	prefixes := []string{}
	for _, p := range strings.Split(*namePaths, ",") {
		if p = strings.TrimSpace(p); p != "" {
			prefixes = append(prefixes, p)
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if *name != "" && servesName(r.URL.Path, prefixes) {
			text(w, *name)
			return
		}
		http.NotFound(w, r)
	})
	log.Printf("nc-echo: http :%d, udp :%d, name %q under %v", *httpPort, *udpPort, *name, prefixes)
	log.Fatal(http.ListenAndServe(fmt.Sprintf(":%d", *httpPort), mux))
}

func servesName(path string, prefixes []string) bool {
	if path == "/" {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func serveUDP(port int, host string) {
	conn, err := net.ListenPacket("udp", fmt.Sprintf(":%d", port))
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			continue
		}
		msg := strings.TrimSpace(string(buf[:n]))
		var reply string
		switch {
		case msg == "hostname":
			reply = host
		case msg == "clientip":
			reply = addr.String()
		case strings.HasPrefix(msg, "echo "):
			reply = strings.TrimPrefix(msg, "echo ")
		default:
			continue
		}
		conn.WriteTo([]byte(reply+"\n"), addr)
	}
}
