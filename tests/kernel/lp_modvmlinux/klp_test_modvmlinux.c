// SPDX-License-Identifier: GPL-2.0
/*
 * Negative control: the test moves this vmlinux reference into the
 * module-specific section .klp.rela.klp_test_target.* (klp-convert refuses
 * to), which the kernel rejects when the target is present.
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);

static const char *lp_value(void)
{
	return saved_command_line;
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
