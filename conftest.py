"""Wires the suite's pytest plugins together; the fixtures live in fixtures/, one concern per module."""

pytest_plugins = [
    "fixtures.options",
    "fixtures.cluster",
    "fixtures.namespaces",
    "fixtures.workloads",
    "fixtures.diagnostics",
    "fixtures.reports",
    "fixtures.tls",
    "fixtures.ingress",
    "fixtures.preconditions",
]
