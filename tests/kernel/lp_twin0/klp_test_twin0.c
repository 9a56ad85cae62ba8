// SPDX-License-Identifier: GPL-2.0
/*
 * twin at position 0 in klp_test_twin (the .init.text twin first in its
 * symbol table). Position 0 works in one load order only: with the target
 * loaded first only one twin is left; loaded after the patch, the target is
 * refused (an unresolvable ambiguity).
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern int twin_c(void) KLP_RELOC_SYMBOL_POS(klp_test_twin, klp_test_twin, twin, 0);

static char value[32];

static const char *lp_value(void)
{
	snprintf(value, sizeof(value), "twin=%d", twin_c());
	return value;
}

KLP_TEST_PATCH("klp_test_twin", "klp_twin_value", lp_value);
