// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of module klp_test_target that shows where it reaches the
 * target's first static homonym_string (tests/kernel/init.sh, step 12).
 * On s390 the address comes through the livepatch module's GOT
 * (R_390_GOTENT), whose entry the loader writes once: when the target is
 * loaded again at another address, the patch keeps the old one.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern const char homonym_a[]
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 1);

static char value[32];

/* The address only, never read through: the target's value parameter. */
static const char *lp_value(void)
{
	snprintf(value, sizeof(value), "%016lx", (unsigned long)homonym_a);
	return value;
}

/* Read through it: the parameter "deref", the last read of the boot. */
static int deref_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", homonym_a);
}

static const struct kernel_param_ops deref_ops = {
	.get = deref_get,
};
module_param_cb(deref, &deref_ops, NULL, 0444);

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
