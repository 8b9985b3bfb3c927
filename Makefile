# seccomp-sandbox: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: dev test demo bench clean

$(PY):
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing python3-venv with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

# Rebuild when the C core, the Cython bridge or the package metadata change.
$(STAMP): $(PY) pyproject.toml setup.py sandbox/_core.pyx $(wildcard csrc/*.c csrc/*.h csrc/syscalls/*)
	@sh tools/system-deps.sh
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

dev: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n auto -q

demo: $(STAMP)
	@$(PY) examples/demo.py

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf build dist demo-out *.egg-info sandbox/_core.c sandbox/*.so .pytest_cache .hypothesis bench/out
	find . -name __pycache__ -prune -exec rm -rf {} +
