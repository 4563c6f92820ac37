"""The one thin wrapper around the Kubernetes client: connect, apply, get, list, delete, wait, exec, logs, events.

Nothing else in netconform imports the client's generated API classes. Objects travel as plain dicts.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shlex
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import urllib3
import websocket
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.discovery import LazyDiscoverer
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, ResourceNotFoundError
from kubernetes.stream.ws_client import ERROR_CHANNEL, STDERR_CHANNEL, STDOUT_CHANNEL, websocket_call

from . import credentials
from .errors import AdmissionDenied, BadKubeconfig, ClusterUnreachable, Forbidden, NetconformError, WaitTimeout

FIELD_MANAGER = "netconform"
RUN_LABEL = "netconform.io/run"
AREA_LABEL = "netconform.io/area"
CREATED_ANNOTATION = "netconform.io/created"
#: Every API request gets a deadline: (connect, read) seconds. No call of this suite waits on the server longer.
REQUEST_TIMEOUT = (5.0, 15.0)
#: The deadline of the one request that confirms the API server is gone before the run gives up on it.
CONFIRM_TIMEOUT = (3.0, 3.0)
Obj = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class ExecResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


class _SerialDiscoverer(LazyDiscoverer):  # type: ignore[misc]  # the client is untyped
    """The client's lazy discovery, one lookup at a time, its cache in this process's memory only. Threads that
    looked up kinds of one group at once each fetched the group. A lookup that hits the cache holds the lock for
    microseconds."""

    def __init__(self, client: Any, cache_file: str) -> None:
        self._lock = threading.RLock()
        super().__init__(client, cache_file)

    def _write_cache(self) -> None:
        """Not to a file: the client rewrote its whole cache file after each miss, with Python's pure-Python JSON
        encoder (19 times per suite run, 0.9 s of the workers' profiled time), for no reader: a process's folder is
        its own and removed at its end, so each process discovers afresh anyway."""

    def search(
        self, prefix: Any = None, group: Any = None, api_version: Any = None, kind: Any = None, **kwargs: Any
    ) -> Any:
        with self._lock:
            return super().search(prefix=prefix, group=group, api_version=api_version, kind=kind, **kwargs)


@dataclass
class Kube:
    """A connected cluster: the API client, where its credentials came from, and a kubectl prefix for repros."""

    api: k8s.ApiClient
    kubeconfig: str | None
    context: str | None
    _dyn: DynamicClient | None = field(default=None, repr=False)
    _dyn_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    #: Set once the API server stopped answering: every later call fails at once with this line.
    unreachable: str | None = None

    @property
    def server(self) -> str:
        return str(self.api.configuration.host)

    # -- plumbing -------------------------------------------------------------------------------------------
    @property
    def dyn(self) -> DynamicClient:
        # One discovery client per connection: threads that asked for it at once each made their own before (two
        # discovery requests and a cache file apiece; the rights check's 8 threads made 24 requests where 2 do).
        with self._dyn_lock:
            if self._dyn is None:
                # A path that is never written (see _SerialDiscoverer): the client reads it once and finds nothing.
                cache = os.path.join(credentials.folder(), "discovery.json")
                self._dyn = DynamicClient(self.api, cache_file=cache, discoverer=_SerialDiscoverer)
            return self._dyn

    def _request(
        self, path: str, params: dict[str, str], query: Iterable[tuple[str, str]] = ()
    ) -> tuple[str, str, Any]:
        """(method, url, headers) of a GET on a path the generated API classes serve. The client's CoreV1Api
        takes 0.35 s of CPU to load (measured here), in every process: these few paths are built directly."""
        method, url, headers, _, _ = self.api.param_serialize(
            "GET",
            path,
            path_params=params,
            query_params=list(query),
            header_params={"Accept": "*/*"},
            auth_settings=["BearerToken"],
        )
        return method, url, headers

    def _get_text(
        self, path: str, params: dict[str, str], query: Iterable[tuple[str, str]] = (), timeout: float | None = None
    ) -> str:
        method, url, headers = self._request(path, params, query)
        response = self.api.call_api(method, url, header_params=headers, _request_timeout=timeout)
        body = response.read()
        if not 200 <= response.status <= 299:
            raise k8s.ApiException(http_resp=response)
        return body.decode(errors="replace")

    def kubectl(self, *args: str) -> str:
        """A kubectl command line for this cluster, for the reproduce hints in failure messages."""
        parts = ["kubectl"]
        if self.kubeconfig and os.pathsep in self.kubeconfig:
            parts.insert(0, f"KUBECONFIG={shlex.quote(self.kubeconfig)}")  # kubectl's --kubeconfig takes one file
        elif self.kubeconfig:
            parts.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            parts.append(f"--context={self.context}")
        return " ".join(parts) + " " + shlex.join(args)

    def version(self) -> str:
        return str(self._call(lambda: k8s.VersionApi(self.api).get_code(), "get", "/version", None).git_version)

    def answers(self, timeout: tuple[float, float] = CONFIRM_TIMEOUT) -> bool:
        """Whether the API server answers one short request now (never raises)."""
        if self.unreachable:
            return False
        try:
            k8s.VersionApi(self.api).get_code(_request_timeout=timeout)
            return True
        except Exception:
            return False

    def api_groups(self) -> set[str]:
        """The API groups the server serves (one discovery request)."""
        out = self._call(lambda: k8s.ApisApi(self.api).get_api_versions(), "get", "/apis", None)
        return {g.name for g in out.groups or []}

    def node_proxy(self, node: str, path: str) -> str:
        return str(
            self._call(
                lambda: self._get_text("/api/v1/nodes/{name}/proxy/{path}", {"name": node, "path": path}, timeout=3),
                "get",
                "nodes/proxy",
                None,
            )
        )

    def allowed(self, verb: str, resource: str, group: str = "", subresource: str = "") -> bool:
        """Whether these credentials may do `verb` on `resource` (a SelfSubjectAccessReview)."""
        attrs = {"verb": verb, "resource": resource, "group": group, "subresource": subresource}
        return bool(self._self_review("SelfSubjectAccessReview", {"resourceAttributes": attrs}).get("allowed"))

    def rules(self, namespace: str) -> Obj:
        """What these credentials may do in `namespace`, as the server lists it: a SelfSubjectRulesReview's status
        (resourceRules, nonResourceRules, incomplete, evaluationError)."""
        return self._self_review("SelfSubjectRulesReview", {"namespace": namespace})

    def _self_review(self, kind: str, spec: Obj) -> Obj:
        """The status the server answers a review of these credentials of `kind` (authorization.k8s.io/v1) with."""
        review = self.resource("authorization.k8s.io/v1", kind)
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec}
        out = self._call(lambda: review.create(body=body, serializer=_plain), "create", f"{kind.lower()}s", None)
        return dict(out.get("status") or {})

    def resource(self, api_version: str, kind: str) -> Any:
        # The core group's kinds are under /api, the others under /apis: named, the client's discovery reads only
        # that group. Left open, a core kind's first lookup read every API group that has a v1 (23 requests here,
        # 2.3 s of each process's start with the API server 100 ms away, benchmarks/remote.py).
        prefix = "apis" if "/" in api_version else "api"
        return self._call(
            lambda: self.dyn.resources.get(prefix=prefix, api_version=api_version, kind=kind), "discover", kind, None
        )

    def has_kind(self, api_version: str, kind: str) -> bool:
        try:
            self.resource(api_version, kind)
            return True
        except ResourceNotFoundError:
            return False

    # -- objects --------------------------------------------------------------------------------------------
    def apply(
        self, docs: Iterable[Obj], namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Obj]:
        """Server-side apply each document; namespaced objects land in `namespace` unless they name one."""
        applied = []
        for doc in docs:
            doc = _with_labels(doc, labels or {})
            res = self.resource(doc["apiVersion"], doc["kind"])
            ns = None
            if res.namespaced:
                ns = doc["metadata"].get("namespace") or namespace
                doc["metadata"]["namespace"] = ns
            out = self._call(
                functools.partial(
                    res.server_side_apply,
                    body=doc,
                    name=doc["metadata"]["name"],
                    namespace=ns,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                    serializer=_plain,
                ),
                "patch",
                doc["kind"],
                ns,
            )
            applied.append(out)
        return applied

    def create_once(self, doc: Obj, namespace: str, labels: dict[str, str] | None = None) -> Obj:
        """Create a namespaced object unless one of its name exists; return the stored one either way."""
        doc = _with_labels(doc, labels or {})
        res = self.resource(doc["apiVersion"], doc["kind"])
        try:
            return self._call(
                lambda: res.create(body=doc, namespace=namespace, serializer=_plain), "create", doc["kind"], namespace
            )
        except ConflictError:
            found = self.get(doc["apiVersion"], doc["kind"], doc["metadata"]["name"], namespace)
            assert found is not None, f"{doc['kind']} {namespace}/{doc['metadata']['name']} exists and does not"
            return found

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        res = self.resource(api_version, kind)
        try:
            return self._call(
                lambda: res.get(name=name, namespace=namespace, serializer=_plain), "get", kind, namespace
            )
        except NotFoundError:
            return None

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str | None = None
    ) -> list[Obj]:
        res = self.resource(api_version, kind)
        out = self._call(
            lambda: res.get(namespace=namespace, label_selector=selector, serializer=_plain), "list", kind, namespace
        )
        return list(out.get("items") or [])

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, grace: int | None = None
    ) -> None:
        res = self.resource(api_version, kind)
        body = {"gracePeriodSeconds": grace} if grace is not None else None
        try:
            delete = functools.partial(res.delete, name=name, namespace=namespace, body=body, serializer=_plain)
            self._call(delete, "delete", kind, namespace)
        except NotFoundError:
            pass

    def pods(self, namespace: str, selector: str) -> list[Obj]:
        return self.list_objects("v1", "Pod", namespace, selector)

    # -- exec, logs, events ---------------------------------------------------------------------------------
    def exec(
        self, namespace: str, pod: str, command: list[str], timeout_s: float = 30, container: str | None = None
    ) -> ExecResult:
        """Run a command in a pod; exit code, stdout and stderr kept apart.

        The client's own `returncode` races the close of the websocket (the status may arrive after the streams,
        or be empty); this reads every channel until the socket closes and parses the status itself.
        """
        ws = self._exec_socket(namespace, pod, command, stdin=False, container=container)
        out: list[str] = []
        err: list[str] = []
        status: list[str] = []
        end = time.monotonic() + timeout_s
        try:
            while ws.is_open() and time.monotonic() < end:
                ws.update(timeout=min(1.0, max(0.05, end - time.monotonic())))
                for chan, buf in ((STDOUT_CHANNEL, out), (STDERR_CHANNEL, err), (ERROR_CHANNEL, status)):
                    if ws.peek_channel(chan):
                        buf.append(ws.read_channel(chan))
            timed_out = ws.is_open()
            for chan, buf in ((STDOUT_CHANNEL, out), (STDERR_CHANNEL, err), (ERROR_CHANNEL, status)):
                if ws.peek_channel(chan):
                    buf.append(ws.read_channel(chan))
        finally:
            ws.close()
        if timed_out:
            # Silence on an exec can be the probe's own wait, or a server that is gone: ask once, briefly.
            self.check_reachable("an exec got no reply")
            return ExecResult(
                124, "".join(out), "".join(err) + f"\n[netconform: exec timed out after {timeout_s:.0f}s]"
            )
        return ExecResult(_exit_code("".join(status)), "".join(out), "".join(err))

    def open_exec(self, namespace: str, pod: str, command: list[str]) -> ExecSession:
        """Start a command in a pod and keep it running, stdin open: one exec for many request/answer rounds
        (`ExecSession.ask`), where every round as its own exec would cost the API server, kubelet and runtime."""
        return ExecSession(self._exec_socket(namespace, pod, command, stdin=True))

    def _exec_socket(
        self, namespace: str, pod: str, command: list[str], stdin: bool, container: str | None = None
    ) -> Any:
        """The exec websocket of `command` in a pod. Opened directly (not through the client's `stream`, which
        swaps the shared ApiClient's transport for the call's duration): concurrent execs and requests on other
        threads never share it."""
        query = [("command", part) for part in command]
        query += [("stderr", "true"), ("stdin", str(stdin).lower()), ("stdout", "true"), ("tty", "false")]
        if container:
            query.append(("container", container))
        _, url, headers = self._request(
            "/api/v1/namespaces/{namespace}/pods/{name}/exec", {"namespace": namespace, "name": pod}, query
        )
        return self._call(
            lambda: websocket_call(self.api.configuration, "GET", url, headers=headers, _preload_content=False),
            "create",
            "pods/exec",
            namespace,
        )

    def logs(self, namespace: str, pod: str, tail: int = 50) -> str:
        try:
            return str(
                self._call(
                    lambda: self._get_text(
                        "/api/v1/namespaces/{namespace}/pods/{name}/log",
                        {"namespace": namespace, "name": pod},
                        [("tailLines", str(tail))],
                    ),
                    "get",
                    "pods/log",
                    namespace,
                )
            )
        except (k8s.ApiException, NetconformError) as e:
            return f"(logs unavailable: {_reason(e)})"

    def events(self, namespace: str, names: Iterable[str] | None = None) -> list[str]:
        wanted = set(names or [])
        try:
            items = self.list_objects("v1", "Event", namespace)
        except (k8s.ApiException, NetconformError) as e:
            return [f"(events unavailable: {_reason(e)})"]
        lines = []
        for ev in sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or "")):
            obj = ev.get("involvedObject") or {}
            if wanted and obj.get("name") not in wanted:
                continue
            lines.append(
                f"{ev.get('type')} {obj.get('kind')}/{obj.get('name')} {ev.get('reason')}: {ev.get('message')}"
            )
        return lines

    # -- every request goes through here ---------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], verb: str, resource: str, namespace: str | None) -> T:
        """Run one API request; turn transport, permission and admission errors into one-line errors.

        A request that gets no answer is confirmed with one short request; if that fails too, the server is
        taken as gone for the rest of the process: every later call fails at once instead of waiting again.
        """
        if self.unreachable:
            raise ClusterUnreachable(self.unreachable)
        try:
            return fn()
        except (urllib3.exceptions.HTTPError, OSError) as e:
            self._lost(_short(e))
        except Exception as e:  # ApiException, the dynamic client's own errors, websocket handshake errors
            status = getattr(e, "status", None)
            if status == 0 and not _http_status(e):  # the websocket never connected
                self._lost(_short(e))
            refusal = refusal_error(e, verb, resource, namespace)
            if refusal is not None:
                raise refusal from None
            raise

    def _lost(self, why: str) -> NoReturn:
        if self.answers():
            raise ClusterUnreachable(
                f"the API server at {self.server} did not answer one request ({why}); it answers again"
            )
        self._gone(why)

    def check_reachable(self, why: str) -> None:
        """After a silence: go on if the API server answers, else fail this and every later call at once."""
        if not self.answers():
            self._gone(why)

    def _gone(self, why: str) -> NoReturn:
        """From now on every call fails at once with this line."""
        self.unreachable = f"the API server at {self.server} stopped answering ({why})"
        raise ClusterUnreachable(self.unreachable)


@dataclass
class ExecSession:
    """A command kept running in a pod by `Kube.open_exec`: a line in on stdin, lines out until an end marker."""

    ws: Any

    def ask(self, line: str, end: str, timeout_s: float) -> list[str] | None:
        """Send one line; the lines answered before `end`, or None when the session ended or went silent (the
        caller starts a new one: nothing here waits past `timeout_s`)."""
        out: list[str] = []

        def collect(got: str) -> bool:
            if got == end:
                return True
            out.append(got)
            return False

        return out if self.answer(line, collect, timeout_s) is not None else None

    def answer(self, line: str, is_answer: Callable[[str], bool], timeout_s: float) -> str | None:
        """Send one line; the first line back that `is_answer` accepts, or None when the session ended or nothing
        came within `timeout_s`."""
        try:
            self.ws.write_stdin(line + "\n")
            deadline = time.monotonic() + timeout_s
            while self.ws.is_open() and time.monotonic() < deadline:
                got = self.ws.readline_stdout(timeout=max(0.05, deadline - time.monotonic()))
                if got and is_answer(got):
                    return str(got)
            return None
        except Exception:  # a closed socket: no answer, never an exception in a probe
            return None

    def is_open(self) -> bool:
        try:
            return bool(self.ws.is_open())
        except Exception:
            return False

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


def _exit_code(status: str) -> int:
    if not status.strip():
        # No status arrived before the socket closed: do not guess success.
        return 255
    doc = yaml.safe_load(status) or {}
    if doc.get("status") == "Success":
        return 0
    for cause in (doc.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause["message"])
    return 255


def _plain(_client: object, obj: Obj) -> Obj:
    """The dynamic client's serializer that keeps the response as the dict it was decoded to: wrapping it in a
    ResourceInstance and back with to_dict() took about a quarter of the CPU of a whole run in one process
    (cProfile: 1.7 of 6.3 s)."""
    return obj


def _with_labels(doc: Obj, labels: dict[str, str]) -> Obj:
    """`doc` with `labels` added, on its pod template too (a Deployment's): the pods and ReplicaSets a controller
    makes from it carry them as well, so `kubectl get pods -l netconform.io/run=<run>` finds every pod of a run."""
    doc = copy.deepcopy(doc)
    meta = doc.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    template = (doc.get("spec") or {}).get("template")
    if isinstance(template, dict) and labels:
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
    return doc


def _status_body(e: Exception) -> dict[str, Any]:
    """The Status object the server sent with an error, if any (REST body or websocket handshake body)."""
    body = getattr(e, "body", None)
    text = body.decode() if isinstance(body, bytes) else body
    if not text:
        # A refused websocket handshake: "Handshake status 403 Forbidden -+-+- {headers} -+-+- b'{...}'".
        reason = str(getattr(e, "reason", "") or "")
        at = reason.rfind("b'{")
        text = reason[at + 2 :].rstrip("'\" ") if at >= 0 else ""
    try:
        doc = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _http_status(e: Exception) -> int | None:
    status = getattr(e, "status", None)
    if status:
        return int(status)
    code = _status_body(e).get("code")
    if code:
        return int(code)
    m = re.search(r"Handshake status (\d{3})", str(getattr(e, "reason", "") or e))
    return int(m.group(1)) if m else None


#: How the RBAC authorizer words a denial: `User "x" cannot create resource "pods" in API group ""`.
RBAC_DENIAL = re.compile(r"cannot [a-z]+ resource")


def refusal_error(e: Exception, verb: str, resource: str, namespace: str | None) -> NetconformError | None:
    """A 401, an RBAC denial or an admission refusal as one line in the server's own words; None otherwise."""
    status = _http_status(e)
    message = str(_status_body(e).get("message") or "").strip()
    where = f" in namespace {namespace}" if namespace else " (cluster scope)"
    if status == 401:
        return Forbidden("the API server rejected the credentials (401 Unauthorized)")
    if status == 403 and (RBAC_DENIAL.search(message) or not message):
        return Forbidden(
            f"permission denied: cannot {verb} {resource}{where}; the credentials need that RBAC permission"
            + (f" (server: {message})" if message else "")
        )
    if status in (400, 403, 422) and verb in ("create", "patch", "update") and message:
        # Pod Security, ResourceQuota, LimitRange, a validating webhook, a policy: not a missing permission.
        return AdmissionDenied(f"the API server refused to {verb} {resource}{where}: {message}")
    return None


def _reason(e: Exception) -> str:
    if isinstance(e, NetconformError):
        return str(e)
    return f"{getattr(e, 'status', '?')} {getattr(e, 'reason', e)}"


def _short(e: Exception) -> str:
    text = str(e)
    return text.split("Caused by", 1)[-1].strip(" ()'\"") if "Caused by" in text else text


def kubeconfig_files(spec: str) -> list[Path]:
    """The files of a kubeconfig setting: one path, or a list as $KUBECONFIG holds it (kubectl's reading: joined by
    the path separator, merged in order, a missing one skipped)."""
    return [Path(p).expanduser() for p in spec.split(os.pathsep) if p]


def default_kubeconfig_files() -> list[Path]:
    """$KUBECONFIG's files, or ~/.kube/config when it is unset or empty (as kubectl reads it)."""
    return kubeconfig_files(os.environ.get("KUBECONFIG", "")) or [Path("~/.kube/config").expanduser()]


def connect(kubeconfig: str | None = None, context: str | None = None, timeout_s: float = 5.0) -> Kube:
    """Load credentials and prove the API server answers; every failure is one readable line. `kubeconfig` is a
    file or a list of them (as in $KUBECONFIG); None reads $KUBECONFIG, or ~/.kube/config."""
    given = kubeconfig_files(kubeconfig) if kubeconfig else None
    if given == []:  # named, but no file in it (only separators): never the default in its place
        raise BadKubeconfig(f"kubeconfig {kubeconfig!r} names no file")
    files = default_kubeconfig_files() if given is None else given
    found = [f for f in files if f.exists()]
    cfg = k8s.Configuration()
    try:
        if given is None and not found and not _in_cluster():
            source = "from $KUBECONFIG" if os.environ.get("KUBECONFIG") else "the default; $KUBECONFIG is not set"
            raise BadKubeconfig(
                f"no kubeconfig: {_missing(files, source)}; pass --kube-config, or use --provider local"
            )
        if given is None and not found:
            k8s_config.load_incluster_config(client_configuration=cfg)
        else:
            if not found:
                raise BadKubeconfig(f"kubeconfig {_missing(files)}")
            file = os.pathsep.join(str(f) for f in found)  # the client merges a list as kubectl does
            try:
                contexts, active = k8s_config.list_kube_config_contexts(config_file=file)
            except (yaml.YAMLError, ConfigException, TypeError, AttributeError) as e:
                raise BadKubeconfig(f"kubeconfig {_named(found)} does not parse: {str(e).splitlines()[0]}") from None
            names = [c["name"] for c in contexts or []]
            if context and context not in names:
                raise BadKubeconfig(
                    f"context {context!r} not found in {_named(found)}; known contexts: {', '.join(names) or '(none)'}"
                )
            k8s_config.load_kube_config(
                config_file=file,
                context=context,
                client_configuration=cfg,
                persist_config=False,
                temp_file_path=credentials.folder(),  # embedded keys written there, removed at the end
            )
            kubeconfig = file
            context = context or (active or {}).get("name")  # the report names the context that was tested
    except ConfigException as e:
        raise BadKubeconfig(f"cannot use kubeconfig: {e}") from None
    cfg.retries = 0
    api = k8s.ApiClient(cfg)
    _default_timeout(api, REQUEST_TIMEOUT)
    # The exec websocket's connect and reads get the same deadline (the client sets none of its own).
    websocket.setdefaulttimeout(REQUEST_TIMEOUT[1])
    kube = Kube(api, kubeconfig, context)
    try:
        k8s.VersionApi(api).get_code(_request_timeout=timeout_s)
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise ClusterUnreachable(f"no cluster answered at {cfg.host}: {_short(e)}") from None
    except k8s.ApiException as e:
        if e.status in (401, 403):
            raise Forbidden(f"the API server at {cfg.host} refused the credentials ({e.status} {e.reason})") from None
        raise ClusterUnreachable(f"the API server at {cfg.host} answered {e.status} {e.reason}") from None
    return kube


def _default_timeout(api: k8s.ApiClient, timeout: tuple[float, float]) -> None:
    """Give every request of this client a deadline unless the call names its own."""
    rest = api.rest_client
    request = rest.request

    def with_deadline(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = timeout
        return request(*args, **kwargs)

    rest.request = with_deadline  # type: ignore[method-assign]


def _named(files: list[Path]) -> str:
    return " + ".join(str(f) for f in files)


def _missing(files: list[Path], source: str = "") -> str:
    where = f" ({source})" if source else ""
    if len(files) == 1:
        return f"{files[0]}{where} does not exist"
    return f"none of {', '.join(str(f) for f in files)}{where} exists"


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()


def wait(
    what: str,
    probe: Callable[[], T | None],
    deadline_s: float,
    interval_s: float = 0.25,
    describe: Callable[[], object] | None = None,
) -> T:
    """Poll `probe` until it returns a truthy value; on timeout report the last observed state (`describe()`, asked
    once at the end: called on every poll it doubled the requests of every wait)."""
    __tracebackhide__ = True
    end = time.monotonic() + deadline_s
    last: object = None
    while True:
        errored = False
        try:
            value = probe()
        except (ClusterUnreachable, Forbidden):
            raise
        except Exception as e:  # a transient error is an observation, not a verdict
            value, last, errored = None, f"{type(e).__name__}: {e}", True
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= end:
            if describe is not None and not errored:
                try:
                    last = describe()
                except (ClusterUnreachable, Forbidden):
                    raise
                except Exception as e:
                    last = f"{type(e).__name__}: {e}"
            raise WaitTimeout(what, deadline_s, last)
        time.sleep(interval_s)


def sweep_namespaces(kube: Kube, older_than_s: float, current_run: str | None) -> list[str]:
    """Delete namespaces of earlier runs (labelled by netconform) older than a threshold."""
    now = time.time()
    removed = []
    for ns in kube.list_objects("v1", "Namespace", selector=RUN_LABEL):
        meta = ns["metadata"]
        if current_run and meta["labels"].get(RUN_LABEL) == current_run:
            continue
        created = float((meta.get("annotations") or {}).get(CREATED_ANNOTATION, "0") or 0)
        if now - created >= older_than_s and not meta.get("deletionTimestamp"):
            kube.delete("v1", "Namespace", meta["name"])
            removed.append(meta["name"])
    return removed
