# Two set-up commands: `make demo` runs the pipeline on the bundled demo, `make test` runs the tests.
# Both create or reuse .venv. The CPU build of torch is installed first, so nothing pulls a CUDA build.

VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_HOME ?= $(CURDIR)/digest-demo
APT_PACKAGES := espeak-ng chromium

.PHONY: demo serve test system-deps lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The demo keeps to its own data directory, whatever DIGEST_HOME says; `make serve` shows it in the browser.
demo: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(VENV)/bin/digest --home $(DEMO_HOME) run --demo

serve: $(VENV)/.installed
	HF_HUB_OFFLINE=1 $(VENV)/bin/digest --home $(DEMO_HOME) serve

system-deps:
	@missing=""; for p in espeak-ng chromium; do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

test: $(VENV)/.installed system-deps
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check digest tests bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	for b in eval_real eval_chatter eval_insights rank search feeds asr; do HF_HUB_OFFLINE=1 $(PY) bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache
