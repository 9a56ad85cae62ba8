// SPDX-License-Identifier: GPL-2.0
/*
 * An annotation in a module without livepatch=Y: modpost refuses it as any
 * other unresolved name.
 */
#include <linux/module.h>

MODULE_DESCRIPTION("klp-convert test: an annotation outside a livepatch module");
MODULE_LICENSE("GPL");

extern char *saved_command_line
	__asm__(".klp.sym.rela.vmlinux.vmlinux.saved_command_line.0");

static int __init notlp_init(void)
{
	return saved_command_line[0] ? 0 : -EINVAL;
}
module_init(notlp_init);
