# Two set-up commands: `make demo` runs the pipeline on the bundled demo, `make test` runs the tests.
# Both create or reuse .venv and install the exact versions of requirements/*.lock, hashes checked:
# the demo only what the package needs to run, the tests the test extras too. The CPU build of torch
# is installed first, so nothing pulls a CUDA build. `make lock` refreshes the locks from pyproject.toml.

VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_HOME ?= $(CURDIR)/digest-demo
APT_PACKAGES := espeak-ng chromium
RUNTIME_LOCK := requirements/runtime.lock
TEST_LOCK := requirements/test.lock
PIP_TOOLS := pip-tools==7.7.0
# The tests that run the CTranslate2 kernels (faster-whisper): `make test-kernels` runs them again under
# every other instruction set the CPU has, so no test depends on one machine's kernels.
KERNEL_TESTS := tests/test_ingest.py tests/test_eval.py tests/test_demo.py
OTHER_ISAS := GENERIC $(if $(shell grep -m1 -o avx512f /proc/cpuinfo 2>/dev/null),AVX2)

.PHONY: demo serve test test-kernels test-one-thread system-deps lint bench lock clean

define install
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --require-hashes -r $(1)
	$(PY) -m pip install -q --no-deps -e .
endef

$(VENV)/.runtime: pyproject.toml $(RUNTIME_LOCK)
	$(call install,$(RUNTIME_LOCK))
	touch $@

$(VENV)/.installed: pyproject.toml $(TEST_LOCK)
	$(call install,$(TEST_LOCK))
	touch $@ $(VENV)/.runtime

# The demo keeps to its own data directory, whatever DIGEST_HOME says; `make serve` shows it in the browser.
demo: $(VENV)/.runtime
	HF_HUB_OFFLINE=1 $(VENV)/bin/digest --home $(DEMO_HOME) run --demo

serve: $(VENV)/.runtime
	HF_HUB_OFFLINE=1 $(VENV)/bin/digest --home $(DEMO_HOME) serve

system-deps:
	@missing=""; for p in espeak-ng chromium; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

test: $(VENV)/.installed system-deps
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest

test-kernels: $(VENV)/.installed system-deps
	for isa in $(OTHER_ISAS); do \
	  CT2_FORCE_CPU_ISA=$$isa HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q -m slow $(KERNEL_TESTS) || exit 1; \
	done

test-one-thread: $(VENV)/.installed system-deps
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check digest tests bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	for b in eval_real eval_chatter eval_insights rank search feeds asr; do HF_HUB_OFFLINE=1 $(PY) bench/$$b.py || exit 1; done

lock:
	test -x .lockenv/bin/pip-compile || (python3 -m venv .lockenv && .lockenv/bin/pip install -q $(PIP_TOOLS))
	for lock in test runtime; do \
	  .lockenv/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	    --no-emit-find-links -c requirements/torch-cpu.txt $$([ $$lock = test ] && echo --extra test) \
	    -o requirements/$$lock.lock pyproject.toml || exit 1; \
	done

clean:
	rm -rf $(VENV) .lockenv $(DEMO_HOME) .pytest_cache
