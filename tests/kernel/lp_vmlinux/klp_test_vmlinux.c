// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of vmlinux's /proc/cmdline handler. The replacement reads
 * saved_command_line, which vmlinux does not export: only a klp relocation
 * can reach it.
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include <linux/seq_file.h>
#include "klp_convert.h"

extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "klp-convert patched: %s\n", saved_command_line);
	return 0;
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
