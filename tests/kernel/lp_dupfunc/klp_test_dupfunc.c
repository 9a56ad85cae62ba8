// SPDX-License-Identifier: GPL-2.0
/*
 * Two klp_func entries for vmlinux's cmdline_proc_show, at old_sympos 0
 * and 1: klp_init_func names both "cmdline_proc_show,1" in sysfs, so
 * kobject_add fails with -EEXIST and the patch is refused
 * (§9 row C11 of docs/klp-contract.md).
 */
#include <linux/module.h>
#include <linux/livepatch.h>
#include <linux/seq_file.h>

static int lp_show_a(struct seq_file *m, void *v)
{
	seq_puts(m, "klp-convert dupfunc a\n");
	return 0;
}

static int lp_show_b(struct seq_file *m, void *v)
{
	seq_puts(m, "klp-convert dupfunc b\n");
	return 0;
}

static struct klp_func funcs[] = {
	{ .old_name = "cmdline_proc_show", .new_func = lp_show_a, .old_sympos = 0 },
	{ .old_name = "cmdline_proc_show", .new_func = lp_show_b, .old_sympos = 1 },
	{ }
};

static struct klp_object objs[] = {
	{ .name = NULL, .funcs = funcs },
	{ }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init klp_test_dupfunc_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit klp_test_dupfunc_exit(void)
{
}

module_init(klp_test_dupfunc_init);
module_exit(klp_test_dupfunc_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
