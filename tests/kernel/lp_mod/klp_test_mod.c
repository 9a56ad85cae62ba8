// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of module klp_test_target. The replacement reaches both static
 * homonym_string of the target (positions 1 and 2) and the second static
 * get_homonym_string, none of which a module loader could link.
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern const char homonym_a[]
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 1);
extern const char homonym_b[]
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 2);
extern const char *get_homonym_b(void)
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, get_homonym_string, 2);

static char value[128];

static const char *lp_value(void)
{
	snprintf(value, sizeof(value), "patched [%s] [%s] [%s]",
		 homonym_a, homonym_b, get_homonym_b());
	return value;
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
