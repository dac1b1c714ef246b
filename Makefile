# DICOM Edge Appliance — developer entry points.
#   make run    set up (system packages, .venv) and start the appliance on simulated hardware
#   make test   set up and run the test suite
# Setup installs what is missing: Debian/Ubuntu packages through apt (sudo when not root),
# Python packages into .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

# Debian packages, checked with dpkg and installed when missing. `make run` installs only what
# running needs: the compiler, headers and pkg-config build systemd-python into the venv, g++ with
# DCMTK's and pybind11's headers build the native DICOM engine (appliance/dicom/engine/), and
# cups-client gives the `lp` command of the CUPS printer driver.
RUN_PACKAGES := libsystemd-dev pkg-config gcc g++ libdcmtk-dev pybind11-dev python3-dev \
  python3-venv cups-client
# `make test` adds the real peers and tools the tests use: DCMTK's tools, Orthanc as PACS (with
# its DICOMweb plugin for the STOW-RS destinations), a CUPS
# server, Chromium and its driver for the browser tests, RAUC with D-Bus and squashfs-tools for
# the updater's tests (tests/update/), systemd for systemd-analyze (tests/image/test_units.py).
TEST_PACKAGES := $(RUN_PACKAGES) dcmtk systemd orthanc orthanc-dicomweb cups chromium chromium-driver \
  rauc dbus \
  libubootenv-tool \
  squashfs-tools
# npm fetches axe-core for the browser tests' accessibility check (tests/web/test_every_page.py);
# Debian's npm only when there is no npm yet (NodeSource's nodejs carries its own and conflicts).
TEST_PACKAGES += $(if $(shell command -v npm),,npm)
AXE_JS := $(VENV)/npm/node_modules/axe-core/axe.min.js

.PHONY: all venv venv-test system-packages test-system-packages run test bench lint clean

all: test

# $(1) = the packages to install when missing
define apt_install_missing
	@missing=""; \
	for pkg in $(1); do \
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
endef

system-packages:
	$(call apt_install_missing,$(RUN_PACKAGES))

test-system-packages:
	$(call apt_install_missing,$(TEST_PACKAGES))

# The venv with what running needs (`make venv`), and the test and lint extras on top.
venv: $(VENV)/.installed-run
venv-test: $(VENV)/.installed-test $(AXE_JS)

$(VENV)/.created: | system-packages
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make: Python 3.11 or newer is needed ($(PYTHON) is $$($(PYTHON) --version))" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	touch $@

$(VENV)/.installed-run: pyproject.toml | $(VENV)/.created
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/.created test-system-packages
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $@ $(VENV)/.installed-run

# axe-core from the npm registry, into the venv (not committed, not in the wheel).
$(AXE_JS): | $(VENV)/.created test-system-packages
	npm install --prefix $(VENV)/npm --no-audit --no-fund --loglevel=error axe-core@4

run: venv
	$(BIN)/appliance run

test: venv-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv-test
	$(BIN)/python -m bench

lint: venv-test
	$(BIN)/ruff check appliance hal tests bench

# The OS image: make image, make image-qemu, make test-image (see image/image.mk).
include image/image.mk

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
