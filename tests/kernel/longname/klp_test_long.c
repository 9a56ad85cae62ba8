// SPDX-License-Identifier: GPL-2.0
/*
 * klp_test_long: two static strings whose klp symbols,
 * .klp.sym.klp_test_long.<name>,0, are 127 and 128 bytes long: one byte
 * either side of what Linux before 6.1 keeps of a livepatch module's
 * symbol name (KSYM_NAME_LEN 128), and the function the livepatches replace,
 * observable through /sys/module/klp_test_long/parameters/value.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

static const char klp_test_long_name_127_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx[] __used = "name of 127 bytes";
static const char klp_test_long_name_128_yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy[] __used = "name of 128 bytes";

/* Replaced by the livepatches. */
noinline const char *klp_test_long_value(void)
{
	return "original";
}

static int value_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", klp_test_long_value());
}

static const struct kernel_param_ops value_ops = {
	.get = value_get,
};
module_param_cb(value, &value_ops, NULL, 0444);

MODULE_LICENSE("GPL");
