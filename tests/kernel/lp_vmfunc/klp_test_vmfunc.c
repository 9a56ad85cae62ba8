// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of vmlinux's /proc/cmdline handler that calls a non-exported
 * vmlinux function, kallsyms_lookup_name(), through a klp relocation, and
 * compares its answer with saved_command_line's address (another klp
 * relocation). The callee is declared extern, as klp-convert's ppc64 fix
 * says: GCC then leaves the nop after the call, which the ppc64 loader
 * rewrites into the TOC restore `ld r2,24(r1)` (e8410018). The parameter
 * "code" shows lp_lookup()'s words as loaded.
 */
#include <linux/module.h>
#include <linux/seq_file.h>
#include "klp_test_patch.h"
#include "klp_test_code.h"
#include "klp_convert.h"

extern unsigned long lookup_name(const char *name)
	KLP_RELOC_SYMBOL(vmlinux, vmlinux, kallsyms_lookup_name);
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);

noinline unsigned long lp_lookup(const char *name)
{
	unsigned long addr = lookup_name(name);

	barrier(); /* a call, not a tail call (arm64: CALL26, not JUMP26) */
	return addr;
}

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	unsigned long addr = lp_lookup("saved_command_line");

	seq_printf(m, "klp-convert vmfunc: %s\n",
		   addr && addr == (unsigned long)&saved_command_line ? "found" : "wrong");
	return 0;
}

KLP_TEST_CODE(lp_lookup);
KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
