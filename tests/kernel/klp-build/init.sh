#!/bin/busybox sh
# /init of the klp-build test initramfs (tests/kernel_klp_build.rs): loads
# the livepatch modules klp-build made from tests/kernel/klp-build/*.patch in
# the kernel built from the same tree, and prints "KLPTEST <step> <key>=<value>".
. /klptest.sh

foo() { cat /sys/kernel/kobject_example/foo 2>/dev/null || echo none; }

out start "kernel=$(uname -r)"

# Non-exported vmlinux data (saved_command_line) through a klp relocation.
out cmdline "before=$(cat /proc/cmdline)"
if load cmdline livepatch-cmdline.ko; then
	wait_patch livepatch_cmdline cmdline
	out cmdline "patched=$(cat /proc/cmdline)"
	disable livepatch_cmdline cmdline
fi
out cmdline "after=$(cat /proc/cmdline)"

# A static function of the patched function's own file: proc_tgid_stat
# calls do_task_stat.
if load stat livepatch-stat.ko; then
	wait_patch livepatch_stat stat
	out stat "patched=$(tail -n 1 /proc/1/stat)"
	disable livepatch_stat stat
fi
out stat "after=$(grep -c klp-build /proc/1/stat)"

# A function whose name vmlinux has twice (version_show): old_sympos != 0.
out version "before=$(cat /sys/kernel/boot_params/version)"
if load version livepatch-version.ko; then
	wait_patch livepatch_version version
	out version "patched=$(cat /sys/kernel/boot_params/version)"
	disable livepatch_version version
fi
out version "after=$(cat /sys/kernel/boot_params/version)"

# A module's function (kobject_example's foo_show, reading its static foo):
# the patch first, then the module; then the module first.
if load kobject_patch_first livepatch-kobject.ko; then
	wait_patch livepatch_kobject kobject_patch_first
	load kobject_patch_first kobject-example.ko
	out kobject_patch_first "patched=$(foo)"
	disable livepatch_kobject kobject_patch_first
	out kobject_patch_first "unpatched=$(foo)"
	rmmod kobject_example
fi
if load kobject_module_first kobject-example.ko; then
	out kobject_module_first "before=$(foo)"
	if load kobject_module_first livepatch-kobject.ko; then
		wait_patch livepatch_kobject kobject_module_first
		out kobject_module_first "patched=$(foo)"
		disable livepatch_kobject kobject_module_first
	fi
	rmmod kobject_example
fi

# The kernel's own samples/livepatch (C, a static struct klp_patch): the
# /proc/cmdline sample, and callbacks on a module (an object whose funcs
# array is empty, and one with a function) loaded before the patch.
if load sample livepatch-sample.ko; then
	wait_patch livepatch_sample sample
	out sample "patched=$(cat /proc/cmdline)"
	disable livepatch_sample sample
fi
load callbacks livepatch-callbacks-mod.ko
if load callbacks livepatch-callbacks-demo.ko; then
	wait_patch livepatch_callbacks_demo callbacks
	disable livepatch_callbacks_demo callbacks
fi
rmmod livepatch_callbacks_mod

# What check predicts the kernel refuses: a klp symbol's position changed
# to one vmlinux lacks, and version_show's old_sympos set to 0.
load badpos livepatch-cmdline.badpos.ko && disable livepatch_cmdline badpos
load sympos0 livepatch-version.sympos0.ko && disable livepatch_version sympos0

out done "result=ok"
halt_machine
