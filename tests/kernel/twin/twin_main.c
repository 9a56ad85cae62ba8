// SPDX-License-Identifier: GPL-2.0
/*
 * A target module with two static twin(): one in .init.text, one in .text.
 * Its value parameter shows klp_twin_value(), which the livepatches of the
 * load-order scenario replace with one that calls twin().
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

int klp_twin_init_value(void);
int klp_twin_text_value(void);

/* Replaced by the livepatch; must stay a real, ftrace-able function. */
noinline const char *klp_twin_value(void)
{
	return "original";
}

static int value_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", klp_twin_value());
}

static const struct kernel_param_ops value_ops = {
	.get = value_get,
};
module_param_cb(value, &value_ops, NULL, 0444);

static int __init twin_mod_init(void)
{
	pr_info("%s: loaded (%d, %d)\n", KBUILD_MODNAME, klp_twin_init_value(),
		klp_twin_text_value());
	return 0;
}
module_init(twin_mod_init);

static void __exit twin_mod_exit(void)
{
}
module_exit(twin_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-convert test target: a static homonym in .init.text and in .text");
