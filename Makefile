# DICOM Edge Appliance — developer entry points.
#   make run    set up (system packages, .venv) and start the appliance on simulated hardware
#   make test   set up and run the test suite
# Setup installs what is missing: Debian/Ubuntu packages through apt (sudo when not root),
# Python packages into .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

# Debian packages the appliance and its tests need (checked with dpkg, installed when missing).
# systemd provides systemd-analyze for the unit checks in tests/image/test_units.py.
# rauc, dbus and squashfs-tools: the updater's tests install real bundles (tests/update/).
SYSTEM_PACKAGES := dcmtk libsystemd-dev pkg-config gcc python3-dev python3-venv systemd \
  orthanc cups cups-client chromium chromium-driver rauc dbus squashfs-tools

.PHONY: all venv system-packages run test bench lint clean

all: test

system-packages:
	@missing=""; \
	for pkg in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "make: missing system packages:$$missing (and no apt-get: install them by hand)" >&2; \
	    exit 1; \
	  fi; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "make: installing system packages:$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml | system-packages
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make: Python 3.11 or newer is needed ($(PYTHON) is $$($(PYTHON) --version))" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $@

run: venv
	$(BIN)/appliance run

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m bench

lint: venv
	$(BIN)/ruff check appliance hal tests bench

# The OS image: make image, make image-qemu, make test-image (see image/image.mk).
include image/image.mk

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
