# image/uboot/prelude-qemu.cmd — platform prelude of boot.cmd for QEMU's virt machine with
# Debian's qemu_arm64 U-Boot (make test-uboot): virtio disk 0, the device tree QEMU provides.
# This U-Boot keeps no environment of its own, so the prelude does what the Raspberry Pi's
# U-Boot does itself (its environment lives in uboot.env on the FAT partition): import uboot.env
# at start, and save by exporting the whole environment in U-Boot's binary format (CRC32 +
# variables, CONFIG_ENV_SIZE 0x4000 as rpi_arm64) and writing it back over uboot.env.
setenv edge_dev virtio
setenv edge_devnum 0
setenv edge_console "console=ttyAMA0,115200"
setenv edge_fdtfile
setenv edge_fdt_fallback ${fdtcontroladdr}
setenv edge_envaddr 0x48000000
setenv kernel_comp_addr_r 0x50000000
setenv kernel_comp_size 0x04000000
# (expanded here: the values above are fixed)
setenv edge_saveenv "env export -c -s 0x4000 ${edge_envaddr} && fatwrite ${edge_dev} ${edge_devnum}:1 ${edge_envaddr} uboot.env 0x4000"
if load ${edge_dev} ${edge_devnum}:1 ${edge_envaddr} uboot.env; then
    env import -c ${edge_envaddr} 0x4000 || echo "edge: uboot.env is damaged (bad CRC): default environment"
else
    echo "edge: no uboot.env: default environment"
fi
