// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU data initialised with the address of vmlinux's saved_command_line,
 * which is not exported: a klp relocation into .data..percpu
 * (.klp.rela.vmlinux..data..percpu). Before 6.16 the loader drops it
 * (apply_relocations skips the per-CPU section, whose SHF_ALLOC it has
 * cleared by then), and every CPU's copy keeps NULL; 6.16 relocates the
 * section before copying it to each CPU.
 */
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/seq_file.h>
#include "klp_convert.h"
#include "klp_test_patch.h"

extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);

static DEFINE_PER_CPU(char **, klp_test_pcpu_klp) = &saved_command_line;

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	char **p = this_cpu_read(klp_test_pcpu_klp);

	seq_printf(m, "klp-convert percpu-klp: %s\n",
		   !p ? "dropped" : p == &saved_command_line ? "relocated" : "wrong");
	return 0;
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
