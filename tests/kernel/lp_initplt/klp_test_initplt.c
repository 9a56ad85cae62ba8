// SPDX-License-Identifier: GPL-2.0
/*
 * ppc32's .init PLT trap (klp-convert rule ppc32-init-plt). Livepatch of
 * vmlinux's /proc/cmdline handler whose helper lp_calls() calls many
 * distinct vmlinux functions through klp relocations (R_PPC_REL24). Modules
 * live in vmalloc space, more than 32 MiB from vmlinux, so each call takes
 * a trampoline in the module's PLT. lp_calls() is in its own section:
 * LP_CALLS_SECTION, given by the test. With ".lp.init_calls" the klp
 * section is .klp.rela.vmlinux..lp.init_calls, whose name contains ".init":
 * the loader reserves its trampolines in .init.plt but, the calls being in
 * core text, writes them in .plt. With ".lp.calls" it works.
 *
 * lp_init_plt_calls.h (written by the test) declares f0..fN-1 as klp
 * symbols of N vmlinux functions and defines LP_CALL_ALL() calling each.
 * Only kallsyms_lookup_name is called for real; the others sit behind a
 * parameter that is never set.
 *
 * The parameter "plt" reads the module's core PLT back as the loader left
 * it: "<trampolines written>,<entries .plt was sized for>" (the section
 * headers a livepatch module keeps, klp_info, give its address and size).
 */
#include <linux/module.h>
#include <linux/seq_file.h>
#include "klp_test_patch.h"
#include "klp_convert.h"
#include "lp_init_plt_calls.h"

extern unsigned long lookup_name(const char *name)
	KLP_RELOC_SYMBOL(vmlinux, vmlinux, kallsyms_lookup_name);
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);

static bool never;
module_param(never, bool, 0400);

/* The loader's trampoline: lis r12,hi; addi r12,r12,lo; mtctr r12; bctr. */
#define LP_PLT_ENTRY_WORDS 4
#define LP_PLT_MAX 64

static int plt_get(char *buf, const struct kernel_param *kp)
{
	const Elf_Shdr *plt = &THIS_MODULE->klp_info->sechdrs[THIS_MODULE->arch.core_plt_section];
	const u32 *word = (const u32 *)plt->sh_addr;
	unsigned int n = 0;

	/* do_plt_call's own walk: an entry is taken while its first word is not 0. */
	while (n < LP_PLT_MAX && word[n * LP_PLT_ENTRY_WORDS])
		n++;
	return sysfs_emit(buf, "%u,%u\n", n,
			  (unsigned int)(plt->sh_size / (LP_PLT_ENTRY_WORDS * 4)));
}

static const struct kernel_param_ops plt_ops = { .get = plt_get };
module_param_cb(plt, &plt_ops, NULL, 0400);

static noinline __section(LP_CALLS_SECTION) unsigned long lp_calls(const char *name)
{
	unsigned long addr = lookup_name(name);

	if (READ_ONCE(never)) {
		LP_CALL_ALL();
	}
	barrier();
	return addr;
}

static int lp_cmdline_proc_show(struct seq_file *m, void *v)
{
	unsigned long addr = lp_calls("saved_command_line");

	seq_printf(m, "klp-convert initplt: %s\n",
		   addr && addr == (unsigned long)&saved_command_line ? "found" : "wrong");
	return 0;
}

KLP_TEST_PATCH(NULL, "cmdline_proc_show", lp_cmdline_proc_show);
