# The README's two commands: `make demo` and `make test`. Each creates/refreshes .venv and installs
# what it needs on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgeticket-installed
DEMO_OUT ?= runs

.PHONY: demo test install clean bench docs cross-tools emulated-rpi4 browser-tools

$(STAMP): pyproject.toml requirements.txt requirements-nodeps.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -c "import torch, spikingjelly.activation_based, edgeticket; print('edgeticket installed, torch', torch.__version__)"
	$(PY) -m edgeticket.device.native > /dev/null  # the event backend's kernels for this machine (needs a C compiler)
	touch $(STAMP)

# Debian's aarch64 cross compilers and qemu-user (cross-built TVM libraries and event kernels for the ARM targets,
# run under emulation) and OpenSSH's server (the board end of the profile --host test). Needs root (apt); without
# them those tests are skipped with a note naming this target.
CROSS_PACKAGES := gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user openssh-server
cross-tools:
	@if command -v aarch64-linux-gnu-gcc >/dev/null && command -v aarch64-linux-gnu-g++ >/dev/null && \
	    command -v qemu-aarch64 >/dev/null && test -x /usr/sbin/sshd; then \
		echo "cross tools present"; \
	else \
		apt-get install -y -q $(CROSS_PACKAGES) >/dev/null || \
		(apt-get update -q >/dev/null && apt-get install -y -q $(CROSS_PACKAGES) >/dev/null); \
	fi

# Debian's Chromium, for the test that opens the HTML pages (`inspect --html`, `report --html`) in a real headless
# browser, takes a screenshot and counts the rendered charts and tables. Needs root (apt); without it that test is
# skipped with a note naming this target.
browser-tools:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then \
		echo "chromium present"; \
	else \
		apt-get install -y -q chromium >/dev/null || \
		(apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null); \
	fi

# An emulated Raspberry Pi 4: Debian bookworm's arm64 python3.11 + the aarch64 wheels of the base install and
# the TVM runtime, run under qemu-user by the wrapper $(EMULATED_RPI4)/python3 (no root; needs qemu-aarch64
# from cross-tools, apt-get and dpkg-deb, network access to Debian's mirror and PyPI). Quick no-op once built.
EMULATED_RPI4 ?= .cache/emulated-rpi4
emulated-rpi4:
	bash tools/emulated_board.sh $(EMULATED_RPI4)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

DEMO_RUN := $(DEMO_OUT)/imp_vgg5_digits_44136fa355

# search on the embedded default -> compile its final ticket for a Raspberry Pi 4 (bundle summary) and for
# this host -> profile the host bundle here (latency, memory, spike rates, SynOps)
demo: $(STAMP)
	$(VENV)/bin/edgeticket search --out $(DEMO_OUT)
	$(VENV)/bin/edgeticket compile $(DEMO_RUN) --target rpi4 --out bundles --name demo-rpi4
	$(VENV)/bin/edgeticket compile $(DEMO_RUN) --target host --out bundles --name demo-host > /dev/null
	$(VENV)/bin/edgeticket profile bundles/demo-host

# regenerate docs/targets.md from edgeticket/targets/*.toml and the memory plans (tests/test_docs.py checks it)
docs: $(STAMP)
	$(PY) tools/docs_targets.py > docs/targets.md.tmp && mv docs/targets.md.tmp docs/targets.md

bench: $(STAMP)
	$(PY) bench/train_step.py
	$(PY) bench/search_cost.py
	-$(PY) bench/event.py  # exits 1 when a goal is missed: the other benches still run
	$(PY) bench/tvm.py

clean:
	rm -rf $(VENV) .pytest_cache
