# image/uboot/prelude-rpi.cmd — platform prelude of boot.cmd for the Raspberry Pi (Debian's
# u-boot-rpi, rpi_arm64 build, loaded by the Pi firmware): SD card / eMMC is mmc 0. U-Boot has
# already loaded its environment from uboot.env on the FAT partition (CONFIG_ENV_IS_IN_FAT,
# mmc 0:1, CONFIG_ENV_SIZE 0x4000) and saves it there with saveenv.
setenv edge_dev mmc
setenv edge_devnum 0
setenv edge_console "console=tty0 console=ttyS1,115200"
# U-Boot names the board's device tree (e.g. broadcom/bcm2711-rpi-4-b.dtb) from its revision
# only while fdtfile is unset: take it and unset it, so that the saved environment never pins
# the device tree of the board the card was first used in.
setenv edge_fdtfile "${fdtfile}"
setenv fdtfile
# the firmware's own device tree: used only when the slot lacks the board's
setenv edge_fdt_fallback ${fdt_addr}
# room for Debian's compressed arm64 kernel (booti unpacks it to kernel_addr_r) and an
# initramfs well clear of it, below the memory the GPU takes on a 1 GiB board
setenv fdt_addr_r 0x05f00000
setenv ramdisk_addr_r 0x06000000
setenv kernel_comp_addr_r 0x10000000
setenv kernel_comp_size 0x04000000
setenv edge_saveenv saveenv
