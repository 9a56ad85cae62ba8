// SPDX-License-Identifier: GPL-2.0
/*
 * Refused at conversion: get_homonym_string exists twice in the target and
 * nothing says which one is meant.
 */
#include <linux/module.h>
#include "klp_test_patch.h"

const char *get_homonym_string(void);

static const char *lp_value(void)
{
	return get_homonym_string();
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
