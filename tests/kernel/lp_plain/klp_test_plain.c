// SPDX-License-Identifier: GPL-2.0
/*
 * A livepatch written as plain C: no annotations. klp-convert finds from the
 * target kernel's symbol maps that saved_command_line (vmlinux) and
 * klp_test_target_b (the target module) are not exported, and which object
 * owns each.
 */
#include <linux/module.h>
#include "klp_test_patch.h"

extern char *saved_command_line;
const char *klp_test_target_b(void);

static char value[128];

static const char *lp_value(void)
{
	snprintf(value, sizeof(value), "plain [%s] [%.7s]", klp_test_target_b(),
		 saved_command_line);
	return value;
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
