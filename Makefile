# gpuplane — two commands on a fresh machine: `make demo` and `make test`.
# Each target creates the virtualenv and installs what it needs (idempotent).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch: a CPU build where no GPU is present. On machines whose PyPI serves only CUDA wheels,
# point TORCH_INDEX at a CPU index (e.g. https://download.pytorch.org/whl/cpu).
TORCH_VERSION ?= 2.13.0
TORCH_INDEX   ?=
HAVE_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup prometheus test test-demo test-fast test-engine engine demo demo-quick demo-sandbox plan bench bench-smoke gpu-check lint clean help

help:
	@echo "make demo   - run the whole reference pipeline locally (plans, data, training, serving, report)"
	@echo "make demo-quick - the same, smaller (about a minute)"
	@echo "make test   - run the test suite (sets itself up)"
	@echo "make engine - build the sandbox's programs (etcd, Kubernetes, kwok, helm, pulumi) from their Go modules, once"
	@echo "make test-engine - the real-engine lane on a local sandbox cluster (builds the programs first)"
	@echo "make bench  - run the benchmarks and print figures"
	@echo "make bench-smoke - every benchmark at tiny sizes (does it run?)"
	@echo "make plan   - offline plan of every reference stack"
	@echo "make lint   - ruff + mypy + import contracts (lint-imports)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifeq ($(HAVE_GPU),yes)
	$(PIP) install -q "torch>=2.4"
else
	$(PIP) install -q "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX) --extra-index-url https://pypi.org/simple)
endif
	$(PIP) install -q -e ".[workloads,features,dev]"
	@rm -f $(VENV)/.installed-*; touch $@

setup: $(STAMP)

# A real Prometheus for tests/gpuplane/test_promql_prometheus.py (every shipped PromQL evaluated on
# live series): Debian's package where apt-get can install it, else built from its Go module into
# the engine cache. Under CI=true a machine that can do neither fails here; elsewhere the test skips.
PROMETHEUS_VERSION ?= 2.42.0
PROMETHEUS_DIR := $(HOME)/.cache/gpuplane/engine/prometheus-$(PROMETHEUS_VERSION)
prometheus:
	@if command -v prometheus >/dev/null 2>&1 || test -x "$(PROMETHEUS_DIR)/prometheus"; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && { apt-cache show prometheus >/dev/null 2>&1 || \
	     { apt-get update -qq >/dev/null 2>&1 && apt-cache show prometheus >/dev/null 2>&1; }; }; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; \
	elif command -v go >/dev/null 2>&1; then \
	  GOBIN="$(PROMETHEUS_DIR)" go install github.com/prometheus/prometheus/cmd/prometheus@v0.$(patsubst 2.%,%,$(PROMETHEUS_VERSION)); \
	elif [ "$$CI" = true ]; then \
	  echo "prometheus: not installed, and neither apt-get (as root) nor go is available" >&2; exit 1; \
	else echo "prometheus: not installed (apt-get install prometheus, or install go); its test will be skipped"; fi

test: setup prometheus
	$(PY) -m pytest -q -n 2 -m "not engine and not full_demo" --timeout 600
	$(MAKE) test-demo

# The whole demo as one test, alone: its traffic day is timed and must not share the 2 cores.
test-demo: setup
	$(PY) -m pytest -q -m full_demo --timeout 1300 tests/gpuplane/test_demo.py

test-fast: setup
	$(PY) -m pytest -q -n 2 -m "not slow and not engine and not full_demo" --timeout 300

# The programs of `gpuplane sandbox`, built with `go build` from their modules at the versions pinned in
# gpuplane/sandbox/toolchain.py, into ~/.cache/gpuplane/engine (GPUPLANE_ENGINE_CACHE); a second run takes seconds.
engine: setup
	$(PY) -m gpuplane.sandbox.toolchain

# What the engine lane's tests run today (a cold build of every program takes longer than CI allows).
ENGINE_TEST_PROGRAMS ?= etcd kube-apiserver kwok kube-controller-manager kube-scheduler kubectl helm \
  pulumi pulumi-resource-kubernetes pulumi-language-yaml kueue jobset karpenter-kwok knative-serving-controller

NODE_CACHE := $(HOME)/.cache/gpuplane/node
test-engine: setup
	$(PY) -m gpuplane.sandbox.toolchain $(ENGINE_TEST_PROGRAMS)
	@test -d "$(NODE_CACHE)/node_modules/typescript" -a -d "$(NODE_CACHE)/node_modules/@pulumi/pulumi" || \
	  npm install --silent --no-audit --no-fund --prefix "$(NODE_CACHE)" typescript@5 @pulumi/pulumi@3
	$(PY) -m pytest -q -m engine --timeout 900 tests/engine

plan: setup
	@for s in $$(ls stacks/Pulumi.*.yaml | sed 's#stacks/Pulumi.\(.*\).yaml#\1#'); do \
	  $(VENV)/bin/gpuplane plan --stack $$s || exit $$?; done

demo: setup
	$(VENV)/bin/gpuplane demo

demo-quick: setup
	$(VENV)/bin/gpuplane demo --quick

# The reference TrainingJob on a local sandbox, scheduled by the real Kueue, JobSet and Karpenter (needs `make engine`).
demo-sandbox: engine
	$(VENV)/bin/gpuplane demo --sandbox

# Every benchmarks/*.py that is not a helper module, run as a module from the repo root.
BENCHES := $(filter-out %_common %__init__ gpu_h200,$(basename $(notdir $(wildcard benchmarks/*.py))))

bench: setup
	@for b in $(BENCHES); do echo "=== benchmarks/$$b.py"; $(PY) -m benchmarks.$$b || exit $$?; done

# Every benchmark script (gpu_h200 too) at tiny sizes: catches a script that crashes; figures mean nothing.
bench-smoke: setup
	$(PY) -m benchmarks.smoke_common

# The one prepared GPU check (MFU of `small`, weight load to the GPU); also runs on CPU.
gpu-check: setup
	$(PY) -m benchmarks.gpu_h200

lint: setup
	$(VENV)/bin/ruff check components policies stacks gpuplane workloads tests benchmarks
	$(VENV)/bin/mypy components policies stacks gpuplane
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo-output
