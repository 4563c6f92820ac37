# Two entry points for a fresh machine: `make conformance` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODES ?= 2
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: conformance test unit lint venv host-deps clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the local cluster runs on (containerd, runc, CNI plugins, iptables, debootstrap, ...).
host-deps:
	@scripts/install-host-deps

# The main job: the suite against the current kubeconfig context, or the local cluster when none answers.
conformance: $(STAMP)
	@scripts/conformance

# The project's own tests: unit tests, then the local cluster (booted, reused or rebuilt), the smoke test, the
# whole conformance suite (as a least-privileged ServiceAccount), the fault catalogue and the gate's own guarantees
# (wrong cluster, --require, black-holed API, unpullable image, concurrent runs) against it; then it is taken down.
test: $(STAMP)
	@scripts/test

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q -p no:randomly

lint: $(STAMP)
	$(PY) -m pip install -q -e ".[dev]"
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy netconform fixtures conformance

clean:
	rm -rf $(VENV)
