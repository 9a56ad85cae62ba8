// SPDX-License-Identifier: GPL-2.0
/*
 * A vmlinux-only patch that reads klp_test_target's static homonym_string
 * (position 1) through a klp relocation: .klp.rela.klp_test_target.*,
 * which klp_apply_object_relocs applies only for a klp_object named
 * klp_test_target. This patch has none, so the relocation is never
 * applied and /proc/cmdline prints "(null)".
 * klp-convert refuses to write it; the test makes it with the library.
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include <linux/seq_file.h>
#include "klp_convert.h"

extern const char homonym_a[]
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 1);

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "klp-convert noobj: %s\n", homonym_a);
	return 0;
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
