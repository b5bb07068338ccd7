# `make test` and `make demo` create or refresh .venv (only the missing
# parts, see tools/setup_env.sh), then run.
VENV ?= .venv
PYTHON ?= python3
export VENV PYTHON

.PHONY: env test demo

env:
	bash tools/setup_env.sh

test: env
	$(VENV)/bin/python -m pytest tests

demo: env
	$(VENV)/bin/python tools/demo.py
