# Shared by the test initramfs' /init scripts (tests/kernel/init.sh,
# tests/kernel/klp-build/init.sh), installed as /klptest.sh: the mounts and
# the console, "KLPTEST <step> <key>=<value>" lines and the livepatch steps
# they report.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys

LP=/sys/kernel/livepatch
# Through the kernel's log, not straight to the console: a printk record is
# written whole, so the kernel's own messages cannot land in the middle of
# a KLPTEST line (they did, on arm64 under load). printk.devkmsg=on on the
# command line lifts the rate limit on /dev/kmsg.
out() {
	if [ -c /dev/kmsg ]; then
		echo "KLPTEST $*" > /dev/kmsg
	else
		echo "KLPTEST $*"
	fi
}

# wait_patch NAME [STEP]: until its transition is over (at most 60 s); with
# STEP, report whether the patch is enabled
wait_patch() {
	n=0
	while [ "$(cat $LP/$1/transition 2>/dev/null)" = 1 ] && [ $n -lt 300 ]; do
		sleep 0.2; n=$((n + 1))
	done
	[ -z "$2" ] || out "$2" "enabled=$(cat $LP/$1/enabled 2>/dev/null || echo none)"
}

# disable NAME STEP: disable a patch, wait until it is gone, remove the module
disable() {
	echo 0 > $LP/$1/enabled
	n=0
	while [ -d $LP/$1 ] && [ $n -lt 300 ]; do sleep 0.2; n=$((n + 1)); done
	# The patch's sysfs directory goes before its free work drops the
	# module's reference: rmmod may meet EAGAIN for a moment after.
	n=0
	until rmmod $1 2>/dev/null || [ $n -ge 50 ]; do sleep 0.1; n=$((n + 1)); done
	[ -d /sys/module/$1 ] && rc=1 || rc=0
	out "$2" "removed_rc=$rc"
}

load() { # load STEP FILE: insmod, report rc
	insmod /mod/$2; rc=$?
	out "$1" "insmod_$2=$rc"
	return $rc
}

# value STEP: klp_test_target's value, as the patch makes it
value() { out "$1" "value=$(cat /sys/module/klp_test_target/parameters/value 2>/dev/null || echo none)"; }

# tvalue STEP MODULE: a load-order target's value, as the patch makes it
tvalue() { out "$1" "value=$(cat /sys/module/$2/parameters/value 2>/dev/null || echo none)"; }

# kaddr NAME MODULE: the address of the first NAME of MODULE in kallsyms
# (position 1, as klp_find_object_symbol counts)
kaddr() { awk -v n="$1" -v m="[$2]" '$3 == n && $4 == m { print $1; exit }' /proc/kallsyms; }

# halt_machine: end the boot, which ends qemu (-no-reboot). The small
# x86_64 kernel has no ACPI to power off with: it reboots instead.
halt_machine() {
	case "$(uname -m)" in
	x86_64) reboot -f ;;
	*) poweroff -f ;;
	esac
}
