// SPDX-License-Identifier: GPL-2.0
/*
 * A livepatch that also calls a function nobody defines or exports: an
 * ordinary unresolved symbol, which the patched modpost still refuses.
 */
#include <linux/seq_file.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

MODULE_DESCRIPTION("klp-convert test: an ordinary unresolved symbol");

extern char *saved_command_line
	KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
extern int klp_test_no_such_function(void);

static int lp_show(struct seq_file *m, void *v)
{
	return saved_command_line[0] + klp_test_no_such_function();
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_show);
