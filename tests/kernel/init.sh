#!/bin/busybox sh
# /init of the test initramfs: runs the livepatch scenarios in a real kernel
# and prints "KLPTEST <step> <key>=<value>" lines for tests/kernel_e2e.rs,
# kernel_xarch.rs and kbuild_tree.rs. A step whose module is not in /mod
# reports a failed insmod and nothing else.
. /klptest.sh

out start "kernel=$(uname -r)"
out cmdline "before=$(cat /proc/cmdline)"

# 1. Negative control: the unconverted module cannot load.
load unconverted klp_test_vmlinux.unconverted.ko
# 1b. The converted module in ELF's extended section numbering: refused.
load extended klp_test_vmlinux.extended.ko

# 2. vmlinux reference: saved_command_line through a klp relocation.
if load vmlinux klp_test_vmlinux.ko; then
	wait_patch klp_test_vmlinux
	out vmlinux "patched=$(cat /proc/cmdline)"
	disable klp_test_vmlinux vmlinux
	out vmlinux "after=$(cat /proc/cmdline)"
fi

# 3. Target first, then the patch; positions 1 and 2.
load target_first klp_test_target.ko
value target_first
if load target_first klp_test_mod.ko; then
	wait_patch klp_test_mod
	value target_first
	# Reload the target while the patch stays enabled.
	rmmod klp_test_target; out reload "rmmod_rc=$?"
	load reload klp_test_target.ko
	value reload
	disable klp_test_mod reload
	value reload
fi
rmmod klp_test_target 2>/dev/null

# 4. Patch first, then the target: late module patching.
if load late klp_test_mod.ko; then
	wait_patch klp_test_mod
	load late klp_test_target.ko
	value late
	disable klp_test_mod late
	value late
	rmmod klp_test_target; out late "rmmod_target_rc=$?"
fi

# 5. Negative controls with the target loaded: a position the target does
#    not have, an ambiguous position 0, a vmlinux symbol that does not
#    exist, a module-specific section referencing vmlinux.
load badpos klp_test_target.ko
load badpos klp_test_badpos.ko
load ambiguous klp_test_ambiguous.ko
load missing klp_test_missing.ko
load modvmlinux klp_test_modvmlinux.ko
# The module's symbols as the kernel counts them, for the map checks (on
# x86, whose qemu has a second serial port).
[ -c /dev/ttyS1 ] && cat /proc/kallsyms > /dev/ttyS1
rmmod klp_test_target

# 6. Plain C resolved from the symbol maps, in both load orders.
load plain klp_test_target.ko
if load plain klp_test_plain.ko; then
	wait_patch klp_test_plain
	value plain
	disable klp_test_plain plain
	value plain
fi
rmmod klp_test_target
if load plain_late klp_test_plain.ko; then
	wait_patch klp_test_plain
	load plain_late klp_test_target.ko
	value plain_late
	disable klp_test_plain plain_late
	rmmod klp_test_target
fi

# 7. The klp-convert v7 selftest scenarios, in both load orders.
load v7 klp_test_target.ko
if load v7 klp_test_v7.ko; then
	wait_patch klp_test_v7
	value v7
	disable klp_test_v7 v7
	value v7
fi
rmmod klp_test_target
if load v7_late klp_test_v7.ko; then
	wait_patch klp_test_v7
	load v7_late klp_test_target.ko
	value v7_late
	disable klp_test_v7 v7_late
	rmmod klp_test_target
fi

# 8. A non-exported vmlinux function, called through a klp relocation
#    (tests/kernel_xarch.rs); the module's parameter "code" shows its code
#    after loading (ppc64le: the nop after the call, rewritten by the loader).
if [ -f /mod/klp_test_vmfunc.ko ] && load vmfunc klp_test_vmfunc.ko; then
	out vmfunc "code=$(cat /sys/module/klp_test_vmfunc/parameters/code)"
	wait_patch klp_test_vmfunc
	out vmfunc "patched=$(cat /proc/cmdline)"
	disable klp_test_vmfunc vmfunc
	out vmfunc "after=$(cat /proc/cmdline)"
fi

# 9. ppc64le: the same call compiled as a local call (no nop after it),
#    written without the loader check: refused.
[ -f /mod/klp_test_localcall.ko ] && load localcall klp_test_localcall.ko

# 10. Load orders: klp_test_twin has a static twin() in .init.text (first
#     in its symbol table) and one in .text. Loaded first, only the .text
#     one is left in its kallsyms; loaded after the patch, klp_module_coming
#     counts its full symbol table. Position 0 works only target first,
#     position 2 only patch first; plain C against klp_test_twinb (the .text
#     twin first) got position 1, which works in both.
if [ -f /mod/klp_test_twin0.ko ]; then
	load twin0 klp_test_twin.ko
	if load twin0 klp_test_twin0.ko; then
		wait_patch klp_test_twin0
		tvalue twin0 klp_test_twin
		disable klp_test_twin0 twin0
	fi
	rmmod klp_test_twin
	if load twin0_late klp_test_twin0.ko; then
		wait_patch klp_test_twin0
		load twin0_late klp_test_twin.ko
		tvalue twin0_late klp_test_twin
		disable klp_test_twin0 twin0_late
	fi
	rmmod klp_test_twin 2>/dev/null
	load twin2 klp_test_twin.ko
	if load twin2 klp_test_twin2.ko; then
		wait_patch klp_test_twin2
		tvalue twin2 klp_test_twin
		disable klp_test_twin2 twin2
	fi
	rmmod klp_test_twin
	if load twin2_late klp_test_twin2.ko; then
		wait_patch klp_test_twin2
		load twin2_late klp_test_twin.ko
		tvalue twin2_late klp_test_twin
		disable klp_test_twin2 twin2_late
		rmmod klp_test_twin
	fi
	load twin_plain klp_test_twinb.ko
	if load twin_plain klp_test_twin_plain.ko; then
		wait_patch klp_test_twin_plain
		tvalue twin_plain klp_test_twinb
		disable klp_test_twin_plain twin_plain
	fi
	rmmod klp_test_twinb
	if load twin_plain_late klp_test_twin_plain.ko; then
		wait_patch klp_test_twin_plain
		load twin_plain_late klp_test_twinb.ko
		tvalue twin_plain_late klp_test_twinb
		disable klp_test_twin_plain twin_plain_late
		rmmod klp_test_twinb
	fi
fi

# 11. The patch's objects (x86_64, tests/kernel_e2e.rs): a vmlinux-only
#     patch reading klp_test_target's data through .klp.rela.klp_test_target.*
#     loads and enables, and the relocation is never applied (no klp_object
#     for klp_test_target); two klp_func entries for cmdline_proc_show at
#     positions 0 and 1 share a sysfs name and are refused (-EEXIST).
if [ -f /mod/klp_test_noobj.ko ]; then
	load noobj klp_test_target.ko
	if load noobj klp_test_noobj.ko; then
		wait_patch klp_test_noobj noobj
		out noobj "patched=$(cat /proc/cmdline)"
		disable klp_test_noobj noobj
	fi
	rmmod klp_test_target
	load dupfunc klp_test_dupfunc.ko
fi

# 11b. Per-CPU data holding an ordinary relocation over bytes that are not
#      zero (x86_64, tests/kernel_e2e.rs): before 6.16 the loader applies
#      no ordinary relocation there, so the module loads and its per-CPU
#      copy keeps the 1;
#      6.16 on relocates the section and refuses the bytes.
if [ -f /mod/klp_test_percpu.ko ]; then
	if load percpu klp_test_percpu.ko; then
		wait_patch klp_test_percpu
		out percpu "patched=$(cat /proc/cmdline)"
		disable klp_test_percpu percpu
	fi
fi

# 11c. Per-CPU data initialised through a klp relocation (every machine:
#      kernel_common::percpu_klp): before 6.16 the loader drops it, and
#      the per-CPU pointer stays NULL; 6.16 on relocates it.
if [ -f /mod/klp_test_percpu_klp.ko ]; then
	if load percpu_klp klp_test_percpu_klp.ko; then
		wait_patch klp_test_percpu_klp
		out percpu_klp "patched=$(cat /proc/cmdline)"
		disable klp_test_percpu_klp percpu_klp
	fi
fi

# deref STEP: klp_test_gotent's read through its address, or "failed"
# (the read failed) or "hung" (it did not come back within 5 s)
deref() {
	f=/tmp/deref.$$.$((n_deref = n_deref + 1))
	(cat /sys/module/klp_test_gotent/parameters/deref > $f.out 2>/dev/null || echo failed > $f.out
	 mv $f.out $f) &
	n=0
	while [ ! -f $f ] && [ $n -lt 25 ]; do sleep 0.2; n=$((n + 1)); done
	out "$1" "deref=$(cat $f 2>/dev/null || echo hung)"
}

# 12. The target loaded again at another address under the enabled patch
#     (klp_test_twinb takes its place between the unload and the load). The
#     patch shows the address it reaches homonym_string at, beside the one
#     kallsyms gives; s390 keeps the first one in its GOT. Then it reads
#     through it twice: while klp_test_twinb holds the old place (on s390
#     that reads klp_test_twinb's bytes), and, last of all, after it is
#     gone (on s390 that faults; there is no panic_on_oops, but the cat
#     never comes back, so it is read in the background).
if [ -f /mod/klp_test_gotent.ko ]; then
	load gotent klp_test_target.ko
	if load gotent klp_test_gotent.ko; then
		wait_patch klp_test_gotent
		out gotent "real=$(kaddr homonym_string klp_test_target)"
		value gotent
		rmmod klp_test_target; out gotent "rmmod_rc=$?"
		load gotent klp_test_twinb.ko
		load gotent klp_test_target.ko
		out gotent "real=$(kaddr homonym_string klp_test_target)"
		value gotent
		deref gotent
		rmmod klp_test_twinb; out gotent "rmmod_twinb_rc=$?"
		deref gotent
	fi
fi

# 13. The README's walk ("A livepatch in five minutes", tests/kernel_e2e.rs):
#     lp_cmdline.ko, built from the README's source by klp-convert build as
#     the README says, loaded, seen and removed by the README's own commands
#     (/walk, one a line, as root: no sudo), each reported with its status
#     and output; "@gone PATH" where the README says to wait until PATH is
#     gone. Every patch before is disabled and removed: none is enabled.
# ppc32's .init PLT trap: the fixed form, then the one whose klp section
# name contains ".init" (converted without the loader's rules); each reports
# its core PLT as the loader left it.
for m in plt initplt; do
	[ -f /mod/klp_test_$m.ko ] || continue
	if load $m klp_test_$m.ko; then
		wait_patch klp_test_$m
		out $m "plt=$(cat /sys/module/klp_test_$m/parameters/plt)"
		out $m "patched=$(cat /proc/cmdline)"
		disable klp_test_$m $m
	fi
done

if [ -f /mod/lp_cmdline.ko ]; then
	out walk "patches=$(echo $(ls $LP))"
	out walk "before=$(cat /proc/cmdline)"
	cd /mod
	while IFS= read -r line; do
		case "$line" in
		"@gone "*)
			n=0
			while [ -e "${line#@gone }" ] && [ $n -lt 300 ]; do sleep 0.2; n=$((n + 1)); done
			out walk "waited=$n"
			out walk "gone=$([ -e "${line#@gone }" ] && echo no || echo yes)"
			continue ;;
		esac
		o=$(eval "$line" 2>&1); rc=$?
		out walk "cmd=$line"
		out walk "rc=$rc"
		out walk "out=$o"
	done < /walk
	cd /
	out walk "after=$(cat /proc/cmdline)"
	out walk "patches_after=$(echo $(ls $LP))"
	out walk "loaded=$(grep -c '^lp_cmdline ' /proc/modules)"
fi

# 14. klp symbol names of 127 and 128 bytes (x86_64, tests/kernel_e2e.rs):
#     Linux before 6.1 reads at most 127 bytes of the name (KSYM_NAME_LEN).
if load longname klp_test_long.ko; then
	for len in 127 128; do
		if load longname klp_test_long$len.ko; then
			wait_patch klp_test_long$len
			tvalue long$len klp_test_long
			disable klp_test_long$len long$len
		fi
	done
	rmmod klp_test_long
fi

out done result=ok
halt_machine
