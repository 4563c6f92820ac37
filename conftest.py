"""Wires the suite's pytest plugins together; the fixtures live in fixtures/, one concern per module."""

pytest_plugins = [
    "fixtures.options",
    # Before fixtures.cluster: hooks of equal priority run last-registered first, and the image probe's session
    # start needs the connection that fixtures.cluster makes in its own.
    "fixtures.image_probe",
    "fixtures.cluster",
    "fixtures.namespaces",
    "fixtures.workloads",
    "fixtures.diagnostics",
    "fixtures.observations",
    "fixtures.reports",
    "fixtures.tls",
    "fixtures.ingress",
    "fixtures.preconditions",
    "fixtures.netpol",
    "fixtures.prestart",
    "fixtures.schedule",
]
