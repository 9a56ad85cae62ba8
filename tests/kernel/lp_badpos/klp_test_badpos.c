// SPDX-License-Identifier: GPL-2.0
/*
 * Negative control: klp_test_target has two homonym_string, so position 3
 * does not exist. The kernel must refuse this patch when the target is loaded.
 */
#include <linux/module.h>
#include <linux/livepatch.h>
#include "klp_convert.h"

extern const char homonym_c[]
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, homonym_string, 3);

static const char *lp_value(void)
{
	return homonym_c;
}

static struct klp_func funcs[] = {
	{ .old_name = "klp_test_target_value", .new_func = lp_value },
	{ }
};

static struct klp_object objs[] = {
	{ .name = "klp_test_target", .funcs = funcs },
	{ }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init lp_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit lp_exit(void)
{
}

module_init(lp_init);
module_exit(lp_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
