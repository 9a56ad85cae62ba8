// SPDX-License-Identifier: GPL-2.0
/*
 * An annotation in a module without livepatch=Y: modpost refuses it as any
 * other unresolved name.
 */
#include <linux/module.h>
#include <linux/livepatch.h>

MODULE_DESCRIPTION("klp-convert test: an annotation outside a livepatch module");

extern char *saved_command_line
	__asm__(".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0");

static int lp_show(struct seq_file *m, void *v)
{
	return saved_command_line[0];
}

static struct klp_func funcs[] = {
	{ .old_name = "cmdline_proc_show", .new_func = lp_show, },
	{ }
};
static struct klp_object objs[] = { { .funcs = funcs, }, { } };
static struct klp_patch patch = { .mod = THIS_MODULE, .objs = objs, };

static int lp_init(void) { return klp_enable_patch(&patch); }
static void lp_exit(void) { }
module_init(lp_init);
module_exit(lp_exit);
MODULE_LICENSE("GPL");

