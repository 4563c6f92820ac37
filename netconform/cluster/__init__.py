"""The local cluster: Kubernetes built from Go modules, run as host processes."""
