// SPDX-License-Identifier: GPL-2.0
/*
 * A livepatch whose annotation misspells an unexported vmlinux name: the
 * conversion step of the patched kbuild fails, naming the symbol.
 */
#include <linux/seq_file.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

MODULE_DESCRIPTION("klp-convert test: a misspelled unexported name");

extern char *saved_command_line
	KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_lin);

static int lp_show(struct seq_file *m, void *v)
{
	return saved_command_line[0];
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_show);
