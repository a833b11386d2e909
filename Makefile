# Quick start: `make run` (ComfyUI with this pack on http://127.0.0.1:8188) and `make test`.
# Both set everything up on first use; later runs skip what is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser-deps run test test-unit test-comfy test-browser lint bench

setup: $(READY)

$(READY): pyproject.toml hierafash_cli/runtime.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m hierafash_cli.runtime
	@touch $@

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser-deps:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

run: setup
	$(PY) -m hierafash_cli serve

test: setup browser-deps lint
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

test-comfy: setup
	$(PY) -m pytest -m comfy

test-browser: setup browser-deps
	$(PY) -m pytest -m browser

lint: setup
	$(VENV)/bin/ruff check .

# Benchmarks (bench/, BENCHMARKS.md): tiny seeded models unless CKPT= / ARGS="--ckpt PATH --controlnet PATH".
# QUICK=1 is a smoke mode for correctness only (its timings mean nothing).
bench: setup
	$(PY) bench/run_bench.py $(if $(filter-out 0 no false,$(QUICK)),--quick) \
		$(if $(CKPT),--ckpt $(CKPT)) $(if $(CONTROLNET),--controlnet $(CONTROLNET)) $(ARGS)
