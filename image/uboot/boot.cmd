# image/uboot/boot.cmd — the edge appliance's A/B slot choice with RAUC's U-Boot boot counting.
# The same body on every board: image/uboot/mkscript.sh puts a short platform prelude
# (prelude-rpi.cmd, prelude-qemu.cmd) in front of it and compiles both with mkimage into boot.scr.
# The prelude sets: edge_dev, edge_devnum (the disk: partition 1 FAT, 2 slot A, 3 slot B),
# edge_console (console= arguments), edge_fdtfile (device tree under the slot's /boot/dtbs/, empty:
# none), edge_fdt_fallback (address of the device tree to use when the slot has none) and
# edge_saveenv (the command that stores the environment in uboot.env on the FAT partition).
#
# The environment is shared with RAUC (bootloader=uboot, through fw_setenv/fw_printenv):
#   BOOT_ORDER      slots in preference order, default "A B"; `rauc status mark-active` puts a
#                   newly installed slot first
#   BOOT_A_LEFT     boot attempts slot A has left, default 3; each boot of the slot spends one
#   BOOT_B_LEFT     (saved before the kernel starts); marking a slot good sets it back to 3
# The first slot in BOOT_ORDER with attempts left boots. When no slot has any left, every counter
# is reset to 3 and the board resets: it then boots the first slot in BOOT_ORDER again.
# Kernel, initramfs and device tree come from the chosen slot's own root file system, so an
# update bundle carries its kernel. Temporaries are hush variables (name=value), never saved.

test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT 3
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT 3

slot=
known=
for s in ${BOOT_ORDER}; do
    if test -z "${slot}"; then
        if test "${s}" = A; then
            known=1
            if test ${BOOT_A_LEFT} -gt 0; then
                setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
                slot=A; part=2; left=${BOOT_A_LEFT}
            else
                echo "edge: slot A has no boot attempts left: skipped"
            fi
        elif test "${s}" = B; then
            known=1
            if test ${BOOT_B_LEFT} -gt 0; then
                setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
                slot=B; part=3; left=${BOOT_B_LEFT}
            else
                echo "edge: slot B has no boot attempts left: skipped"
            fi
        fi
    fi
done

if test -z "${slot}"; then
    if test -z "${known}"; then
        echo "edge: BOOT_ORDER \"${BOOT_ORDER}\" names no slot: set back to \"A B\""
        setenv BOOT_ORDER "A B"
    fi
    echo "edge: no slot has boot attempts left: counters reset to 3, resetting"
    setenv BOOT_A_LEFT 3
    setenv BOOT_B_LEFT 3
    run edge_saveenv
    reset
fi

echo "edge: slot ${slot} chosen (BOOT_ORDER=\"${BOOT_ORDER}\"), ${left} boot attempt(s) left after this one"
# the spent attempt is stored before the kernel runs: a kernel that hangs or panics costs one
if run edge_saveenv; then
    echo "edge: environment saved"
else
    echo "edge: warning: the environment could not be saved; booting slot ${slot} anyway"
fi

# the root partition's PARTUUID as the disk itself has it (an env variable, set after the save)
setenv rootuuid
part uuid ${edge_dev} ${edge_devnum}:${part} rootuuid || echo "edge: warning: no PARTUUID for partition ${part}"
setenv bootargs "${edge_console} root=PARTUUID=${rootuuid} rauc.slot=${slot} @ARGS@"
slotdev="${edge_dev} ${edge_devnum}:${part}"
fdt=${edge_fdt_fallback}
# (hush runs no assignment after || : each failure is an if/else)
ok=
if load ${slotdev} ${kernel_addr_r} /boot/vmlinuz; then
    if load ${slotdev} ${ramdisk_addr_r} /boot/initrd.img; then
        ok=1
        initrd=${ramdisk_addr_r}:${filesize}
    else
        echo "edge: slot ${slot} has no /boot/initrd.img"
    fi
else
    echo "edge: slot ${slot} has no /boot/vmlinuz"
fi
if test -n "${ok}" && test -n "${edge_fdtfile}"; then
    if load ${slotdev} ${fdt_addr_r} /boot/dtbs/${edge_fdtfile}; then
        fdt=${fdt_addr_r}
    else
        echo "edge: slot ${slot} has no /boot/dtbs/${edge_fdtfile}: using the device tree of the firmware"
    fi
fi
if test -n "${ok}"; then
    echo "edge: booting slot ${slot} from partition ${part}: ${bootargs}"
    booti ${kernel_addr_r} ${initrd} ${fdt}
fi
# only reached when the slot's kernel could not be loaded or started: the attempt is spent
echo "edge: cannot boot slot ${slot}; resetting in 3 s"
sleep 3
reset
