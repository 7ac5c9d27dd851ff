# The README's two commands: `make demo` and `make test`. Each creates/refreshes .venv and installs
# what it needs on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeticket-installed
DEMO_OUT ?= runs

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml requirements.txt requirements-nodeps.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "import torch, spikingjelly.activation_based, edgeticket; print('edgeticket installed, torch', torch.__version__)"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

# search on the embedded default -> compile its final ticket for a Raspberry Pi 4 -> the bundle summary
demo: $(STAMP)
	$(VENV)/bin/edgeticket search --out $(DEMO_OUT)
	$(VENV)/bin/edgeticket compile $(DEMO_OUT)/imp_vgg5_digits_44136fa355 --target rpi4 --out bundles --name demo-rpi4

bench: $(STAMP)
	$(PY) bench/train_step.py
	$(PY) bench/search_cost.py

clean:
	rm -rf $(VENV) .pytest_cache
