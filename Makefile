# Two commands on a fresh machine:
#   make demo   -- create .venv, install, run the end-to-end demo on simulated data
#   make test   -- create .venv, install, run the test suite
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.14.1 torchvision==0.29.1
BIN    := $(VENV)/bin

.PHONY: demo test lint bench install clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/irfa-nwb demo

test: install
	$(BIN)/python -m pytest -m "not slow and not gpu" -q

lint: install
	$(BIN)/ruff check irfa_nwb tests examples benchmarks

bench: install
	$(BIN)/python benchmarks/bench_attention.py
	$(BIN)/python benchmarks/bench_training_step.py

clean:
	rm -rf $(VENV) build *.egg-info
