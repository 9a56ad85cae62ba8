// SPDX-License-Identifier: GPL-2.0
/*
 * The annotation with a comma before the position (klp-convert v1/v2's form;
 * the assembler needs the name quoted): modpost lets it through as well.
 */
#include <linux/seq_file.h>
#include "klp_test_patch.h"

MODULE_DESCRIPTION("klp-convert test: the ',<pos>' annotation");

extern char *saved_command_line
	__asm__("\".klp.sym.rela.vmlinux.vmlinux.saved_command_line,0\"");

static int lp_show(struct seq_file *m, void *v)
{
	return saved_command_line[0];
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_show);
