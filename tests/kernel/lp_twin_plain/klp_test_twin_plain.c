// SPDX-License-Identifier: GPL-2.0
/*
 * Plain C calling the target's static twin(): convert --symbols finds the
 * position that means the .text twin in both load orders (1 in
 * klp_test_twinb), and refuses klp_test_twin, where none does.
 */
#include <linux/module.h>
#include "klp_test_patch.h"

#ifndef KLP_TWIN_TARGET
#define KLP_TWIN_TARGET "klp_test_twinb"
#endif

int twin(void);

static char value[32];

static const char *lp_value(void)
{
	snprintf(value, sizeof(value), "twin=%d", twin());
	return value;
}

KLP_TEST_PATCH(KLP_TWIN_TARGET, "klp_twin_value", lp_value);
