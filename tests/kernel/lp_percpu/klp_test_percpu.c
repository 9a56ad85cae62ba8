// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU data holding an ordinary relocation against vmlinux's export
 * jiffies, over bytes that are not zero (1). Before 6.16 the loader
 * applies no ordinary relocation into .data..percpu (apply_relocations:
 * it has cleared the section's SHF_ALLOC by then): the module loads, and
 * its per-CPU copies keep the 1,
 * which /proc/cmdline shows. 6.16 relocates the section, and the x86_64
 * loader refuses the non-zero bytes.
 */
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include "klp_test_patch.h"

DECLARE_PER_CPU(unsigned long, klp_test_pcpu);

asm(".pushsection .data..percpu,\"aw\",@progbits\n"
    ".balign 8\n"
    ".globl klp_test_pcpu\n"
    "klp_test_pcpu: .quad 1\n"
    ".reloc klp_test_pcpu, R_X86_64_64, jiffies\n"
    ".popsection\n");

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "klp-convert percpu: %lu\n", this_cpu_read(klp_test_pcpu));
	return 0;
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
