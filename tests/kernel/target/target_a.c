// SPDX-License-Identifier: GPL-2.0
/*
 * klp_test_target, file A: a static string and getter that file B repeats
 * under the same names, and the function the livepatch replaces, observable
 * through /sys/module/klp_test_target/parameters/value.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>

static const char homonym_string[] __used = "homonym string A";

/* A static renamed by the compiler's rules for asm labels: its kallsyms name has a dot. */
static const char klp_string_a[] __asm__("klp_string.12345") __used = "klp string A";

/*
 * A function-local static: the compiler names it klp_local_counter.<n>, and
 * that is its kallsyms name.
 */
static noinline __used int klp_local_next(void)
{
	static int klp_local_counter = 606;

	return klp_local_counter++;
}

static noinline __used const char *get_homonym_string(void)
{
	return homonym_string;
}

/* Replaced by the livepatch; must stay a real, ftrace-able function. */
noinline const char *klp_test_target_value(void)
{
	return "original";
}

const char *klp_test_target_b(void);

static int value_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", klp_test_target_value());
}

static const struct kernel_param_ops value_ops = {
	.get = value_get,
};
module_param_cb(value, &value_ops, NULL, 0444);

static int __init target_init(void)
{
	pr_info("klp_test_target: loaded (%s, %s)\n", get_homonym_string(), klp_test_target_b());
	return 0;
}

static void __exit target_exit(void)
{
}

module_init(target_init);
module_exit(target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-convert test target with duplicated static symbols");
