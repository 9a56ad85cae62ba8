// SPDX-License-Identifier: GPL-2.0
/*
 * The static twin() in .init.text. Linked first in klp_test_twin: while the
 * module is coming, its full symbol table counts this twin first; after its
 * init, kallsyms no longer has it.
 */
#include <linux/init.h>
#include <linux/compiler.h>

static noinline __used int __init twin(void)
{
	return 2;
}

int __init klp_twin_init_value(void)
{
	return twin();
}
