# image/image.mk — make targets for the appliance OS image; included by the top-level Makefile,
# which defines PYTHON, VENV and the target `venv-test`.
#   make image        build the arm64 Raspberry Pi image: build/image/edge-appliance-arm64.img.xz
#                     (+ .img, .bmap, .img.xz.sha256, .rpi-imager.json). IMAGE_ARCH=amd64 for the
#                     QEMU-only variant of the same recipe.
#   make image-qemu   build if needed, then boot a copy of the image under QEMU on this terminal
#   make test-image   build if needed, then the boot test (tests/image/test_boot.py): several
#                     QEMU boots, about 10 minutes warm, not part of `make test`
#   make image-deps   install the host tools (mmdebstrap, QEMU, mtools, bmaptool, ...) with apt
#   make bundle       a signed RAUC update bundle of the current image's root file system:
#                     build/image/edge-appliance-$(IMAGE_ARCH).raucb (image/bundle.sh; keys: image/keys.sh,
#                     or EDGE_SIGNING_CERT/EDGE_SIGNING_KEY/EDGE_KEYRING; version: EDGE_BUNDLE_VERSION)
#   make test-update  the amd64 image + bundle, then tests/image/test_update.py under QEMU: install,
#                     trial boot, mark good, refused bundles, fall back after failed trials;
#                     ARCH=arm64: the same with the Pi image through QEMU's U-Boot (slower)
#   make test-uboot   the Raspberry Pi's boot script (image/uboot/) run by Debian's qemu_arm64 U-Boot
#                     against a small disk (tests/image/test_uboot.py): slot choice, boot counting,
#                     fall-back, reset, uboot.env read with fw_printenv; host only, under a minute
# The build needs root (mmdebstrap root mode) and caches downloads in IMAGE_CACHE.

IMAGE_ARCH ?= arm64
IMAGE_CACHE ?= /var/cache/edge-appliance-image
IMAGE_OUT ?= build/image
IMAGE_NAME := edge-appliance-$(IMAGE_ARCH)
IMAGE_IMG := $(IMAGE_OUT)/$(IMAGE_NAME).img
IMAGE_XZ := $(IMAGE_IMG).xz
IMAGE_DEBS := mmdebstrap qemu-user-static binfmt-support arch-test qemu-system-arm \
  qemu-system-x86 bmap-tools dosfstools mtools fdisk e2fsprogs xz-utils dcmtk openssh-client \
  systemd rauc squashfs-tools ovmf binutils g++ g++-aarch64-linux-gnu u-boot-tools u-boot-qemu
# make test-uboot: U-Boot for QEMU's virt machine, mkimage, fw_printenv/fw_setenv, the disk tools
UBOOT_TEST_DEBS := u-boot-qemu u-boot-tools libubootenv-tool qemu-system-arm mtools dosfstools \
  e2fsprogs fdisk
# What the image is made of: a change to any of these rebuilds it.
IMAGE_INPUTS := $(shell find image systemd appliance hal docs -type f \
  -not -name '*.pyc' -not -path '*/__pycache__/*' 2>/dev/null) pyproject.toml

IMAGE_BUNDLE := $(IMAGE_OUT)/$(IMAGE_NAME).raucb

.PHONY: image image-qemu test-image image-deps image-clean bundle test-update test-uboot

# apt-get install of whatever is missing; $(1) = package list
define image_apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  command -v apt-get >/dev/null || { echo "image.mk: missing:$$missing (no apt-get)" >&2; exit 1; }; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "image.mk: installing$$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

image-deps:
	$(call image_apt_install,$(IMAGE_DEBS))
	@# arm64 programs run through qemu-user: binfmt_misc must be mounted and the entry enabled
	@if [ "$(IMAGE_ARCH)" = arm64 ] && ! arch-test arm64 >/dev/null 2>&1; then \
	  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; \
	  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true; \
	  arch-test arm64 >/dev/null || { echo "image.mk: this host cannot run arm64 programs even \
with qemu-user-static; build IMAGE_ARCH=amd64 instead" >&2; exit 1; }; \
	fi

image: $(IMAGE_XZ)

# the disk image itself (what test-image boots) ...
$(IMAGE_IMG): $(IMAGE_INPUTS) | image-deps
	EDGE_CACHE=$(IMAGE_CACHE) EDGE_OUT=$(IMAGE_OUT) PYTHON=$(PYTHON) image/build.sh $(IMAGE_ARCH)

# ... and the release files made from it (.img.xz, .bmap, .sha256, Pi Imager JSON)
$(IMAGE_XZ): $(IMAGE_IMG) | image-deps
	image/release.sh $(IMAGE_IMG)

image-qemu: $(IMAGE_IMG)
	cp --sparse=always $(IMAGE_IMG) $(IMAGE_OUT)/$(IMAGE_NAME)-qemu.img
	@echo "image.mk: booting a copy ($(IMAGE_OUT)/$(IMAGE_NAME)-qemu.img); Ctrl-A X quits QEMU"
	image/qemu-run.sh $(IMAGE_OUT)/$(IMAGE_NAME)-qemu.img $(IMAGE_ARCH)

test-image: $(IMAGE_IMG) venv-test
	EDGE_TEST_IMAGE=$(IMAGE_IMG) \
	  $(VENV)/bin/python -m pytest -m image -v -s -p no:cacheprovider \
	  --timeout=1800 tests/image/test_boot.py

# always remade (about 10 s): the version or signing key may have changed, not the image
bundle: $(IMAGE_IMG) | image-deps
	image/bundle.sh $(IMAGE_ARCH) $(IMAGE_IMG) $(IMAGE_BUNDLE)

# The update test uses the amd64 image (UEFI + GRUB under QEMU) unless ARCH=arm64 is given
# (the Pi image through QEMU's qemu_arm64 U-Boot and boot.scr; about twice as slow under TCG);
# it makes its own variants of the bundle (newer, tampered, foreign-signed, never healthy).
UPDATE_ARCH := $(if $(filter command line,$(origin ARCH)),$(ARCH),amd64)
UPDATE_TIMEOUT := $(if $(filter arm64,$(UPDATE_ARCH)),5400,2400)
test-update: venv-test
	@case "$(UPDATE_ARCH)" in amd64|arm64) ;; \
	  *) echo "image.mk: ARCH must be amd64 or arm64, not '$(UPDATE_ARCH)'" >&2; exit 1;; esac
	$(MAKE) --no-print-directory IMAGE_ARCH=$(UPDATE_ARCH) bundle
	EDGE_TEST_IMAGE=$(IMAGE_OUT)/edge-appliance-$(UPDATE_ARCH).img \
	  EDGE_TEST_BUNDLE=$(IMAGE_OUT)/edge-appliance-$(UPDATE_ARCH).raucb \
	  $(VENV)/bin/python -m pytest -m image -v -s -p no:cacheprovider \
	  --timeout=$(UPDATE_TIMEOUT) tests/image/test_update.py

test-uboot: venv-test
	$(call image_apt_install,$(UBOOT_TEST_DEBS))
	EDGE_TEST_UBOOT=1 $(VENV)/bin/python -m pytest -m image -v -p no:cacheprovider \
	  --timeout=300 tests/image/test_uboot.py

image-clean:
	rm -rf $(IMAGE_OUT) /var/tmp/edge-appliance-image
