// SPDX-License-Identifier: GPL-2.0
/*
 * ppc64le's "Expected nop after call", end to end. Compiled to assembly
 * only (tests/kernel_xarch.rs): helper() is defined in this file, so GCC
 * calls it as a local call, `bl helper` with no nop after it. The test
 * replaces the callee by vmlinux's kallsyms_lookup_name
 * (`bl .klp.sym.rela.vmlinux.vmlinux.kallsyms_lookup_name.0`), assembles the
 * result as a module and writes its klp relocation without the loader
 * check; the ppc64 loader must refuse it.
 */
#include <linux/module.h>
#include <linux/seq_file.h>
#include "klp_test_patch.h"

static noinline __attribute__((noipa)) unsigned long helper(const char *name)
{
	return name[0];
}

noinline unsigned long lp_lookup(const char *name)
{
	unsigned long addr = helper(name);

	barrier();
	return addr;
}

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "klp-convert localcall: %lx\n", lp_lookup("saved_command_line"));
	return 0;
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
