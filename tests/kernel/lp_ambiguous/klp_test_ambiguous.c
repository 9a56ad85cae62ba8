// SPDX-License-Identifier: GPL-2.0
/*
 * Negative control: homonym_string exists twice in klp_test_target, so
 * position 0 ("unique") is ambiguous and the kernel refuses the patch.
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern const char homonym[]
	KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, homonym_string);

static const char *lp_value(void)
{
	return homonym;
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
