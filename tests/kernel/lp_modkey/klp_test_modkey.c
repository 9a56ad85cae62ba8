// SPDX-License-Identifier: GPL-2.0
/*
 * Refused at conversion: a static key of the target module used with
 * static_branch_unlikely() puts a module-specific relocation in
 * __jump_table, which the kernel processed before the key could be resolved.
 */
#include <linux/module.h>
#include <linux/jump_label.h>
#include "klp_test_patch.h"

extern struct static_key_false klp_test_key;

static const char *lp_value(void)
{
	return static_branch_unlikely(&klp_test_key) ? "key on" : "key off";
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
