# Quick start: `make run` (ComfyUI with this pack on http://127.0.0.1:8188) and `make test`.
# Both set everything up on first use; later runs skip what is already done.
# Runtimes (hierafash_cli/runtime.py): `current` (the default, in .venv) and `floor` (in .venv-floor).
SHELL := /bin/bash
PYTHON ?= python3
RUNTIMES := $(shell $(PYTHON) hierafash_cli/runtime.py names)
DEFAULT_RUNTIME := $(firstword $(RUNTIMES))
RUNTIME ?= $(DEFAULT_RUNTIME)
venv = $(shell $(PYTHON) hierafash_cli/runtime.py venv $(1))
VENV := $(call venv,$(DEFAULT_RUNTIME))
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The comfy and browser tiers run once per runtime; everything else once, in the default runtime's venv.
RUNTIME_TIERS := comfy or browser

.PHONY: setup browser-deps run test test-unit test-comfy test-browser lint bench mutate quality

# One venv per runtime, each rebuilt when the pins change.
define runtime_venv
$(2)/.ready: pyproject.toml hierafash_cli/runtime.py
	@test -x $(2)/bin/python || $(PYTHON) -m venv $(2)
	$(2)/bin/python -m pip install -q -e '.[dev]'
	$(2)/bin/python -m hierafash_cli.runtime install $(1)
	@touch $$@
endef
$(foreach r,$(RUNTIMES),$(eval $(call runtime_venv,$(r),$(call venv,$(r)))))

setup: $(foreach r,$(RUNTIMES),$(call venv,$(r))/.ready)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser-deps:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

run: $(call venv,$(RUNTIME))/.ready
	$(call venv,$(RUNTIME))/bin/python -m hierafash_cli serve

test: setup browser-deps lint
	$(PY) -m pytest -m "not ($(RUNTIME_TIERS))"
	@echo "== synthetic benchmark, quick mode (its figures go to a temporary file, not bench/quality/quick.json)"
	$(PY) bench/quality.py --out "$$(mktemp -d)/quick.json"
	@failed=""; for r in $(RUNTIMES); do \
		echo "== comfy and browser tiers on the '$$r' runtime"; \
		"$$($(PYTHON) hierafash_cli/runtime.py venv $$r)/bin/python" -m pytest -m "$(RUNTIME_TIERS)" || failed="$$failed $$r"; \
	done; \
	if [ -n "$$failed" ]; then echo "== failed on:$$failed"; exit 1; fi

test-unit: setup
	$(PY) -m pytest -m "not ($(RUNTIME_TIERS))"

test-comfy: $(call venv,$(RUNTIME))/.ready
	$(call venv,$(RUNTIME))/bin/python -m pytest -m comfy

test-browser: $(call venv,$(RUNTIME))/.ready browser-deps
	$(call venv,$(RUNTIME))/bin/python -m pytest -m browser

lint: setup
	$(VENV)/bin/ruff check .

# Benchmarks (bench/, BENCHMARKS.md): tiny seeded models unless CKPT= / ARGS="--ckpt PATH --controlnet PATH".
# QUICK=1 is a smoke mode for correctness only (its timings mean nothing). RUNTIME=floor picks the other ComfyUI.
bench: $(call venv,$(RUNTIME))/.ready
	$(call venv,$(RUNTIME))/bin/python bench/run_bench.py $(if $(filter-out 0 no false,$(QUICK)),--quick) \
		$(if $(CKPT),--ckpt $(CKPT)) $(if $(CONTROLNET),--controlnet $(CONTROLNET)) $(ARGS)

# Synthetic benchmark, quick mode (QUALITY.md): draws figures, checks the oracles read them back and that
# `hierafash train` on tiny models lowers the loss; writes bench/quality/quick.json. FULL=1: the real run (trains
# a small model for --minutes, drafts and edits through the pack's nodes; bench/quality.json, QUALITY.md).
quality: $(call venv,$(RUNTIME))/.ready
	$(call venv,$(RUNTIME))/bin/python bench/quality.py $(if $(filter-out 0 no false,$(FULL)),--full) $(ARGS)

# Plants each one-line bug of tests/mutations.json in a copy of the tree and fails if no test catches one.
mutate: setup
	$(PY) tools/mutate.py $(IDS)
