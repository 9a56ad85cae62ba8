// SPDX-License-Identifier: GPL-2.0
/* Negative control: a vmlinux symbol that does not exist. */
#include <linux/module.h>
#include <linux/seq_file.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern int klp_no_such_symbol KLP_RELOC_SYMBOL(vmlinux, vmlinux, klp_no_such_symbol);

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%d\n", klp_no_such_symbol);
	return 0;
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
