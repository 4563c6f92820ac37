"""The errors netconform reports to a user: each one line, each with its exit status."""

from __future__ import annotations


class NetconformError(Exception):
    """Base class: a problem the user can act on, printed as one line."""

    exit_code = 2


class ClusterUnreachable(NetconformError):
    """No API server answered (no cluster, wrong address, network)."""

    exit_code = 3


class BadKubeconfig(NetconformError):
    """The kubeconfig is missing, does not parse, or lacks the context asked for."""

    exit_code = 2


class Forbidden(NetconformError):
    """The credentials lack a permission the suite needs; names the verb and resource."""

    exit_code = 4


class AdmissionDenied(NetconformError):
    """The server refused an object for a reason other than RBAC (Pod Security, quota, a webhook, a policy)."""

    exit_code = 4


class ImageUnavailable(NetconformError):
    """The cluster cannot start the probe image (pull failure, admission); every check shares this cause."""

    exit_code = 5


class UsageError(NetconformError):
    """A bad option value."""

    exit_code = 2


class WaitTimeout(AssertionError):
    """A condition polled with a deadline never held; carries the last observed state."""

    def __init__(self, what: str, deadline_s: float, last: object) -> None:
        super().__init__(f"timed out after {deadline_s:.0f}s waiting for {what}; last observed: {last}")
        self.what = what
        self.last = last
