// SPDX-License-Identifier: GPL-2.0
/*
 * Negative control: klp_test_target has two homonym_string, so position 3
 * does not exist. The kernel must refuse this patch when the target is loaded.
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern const char homonym_c[]
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 3);

static const char *lp_value(void)
{
	return homonym_c;
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
