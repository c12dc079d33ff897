# Two commands do all the set-up: `make demo` and `make test` (both idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LINT := __init__.py vidrestore plugins tests benchmarks samples
# The suite runs in this many processes (pytest-xdist), each test file in one of them.
TEST_WORKERS ?= 2

.PHONY: demo test lint bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v ffprobe >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing ffmpeg (Debian package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	  else \
	    echo "vidrestore needs ffmpeg and ffprobe: install your system's ffmpeg package (Debian/Ubuntu: sudo apt-get install ffmpeg)"; exit 1; \
	  fi; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) samples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT)
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) samples/output samples/downloads
