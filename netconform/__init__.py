"""netconform: a conformance suite for Kubernetes cluster networking."""

__version__ = "0.1.0"
