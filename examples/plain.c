// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The fragment of annotated.c written as plain C: nothing on the
 * declarations. Given the target kernel's symbols, klp-convert finds that
 * saved_command_line is a vmlinux symbol vmlinux does not export, that
 * sprintf is exported (it stays an ordinary relocation), and that
 * get_homonym_string is a static of module klp_test_target, which has two.
 * That last one is a real ambiguity: built with -DAMBIGUOUS the table below
 * is left out and the tool refuses, listing the candidates; the table picks
 * the second without touching the declaration.
 */
#include "klp_convert.h"

extern char *saved_command_line;
extern const char *get_homonym_string(void);
extern int sprintf(char *buf, const char *fmt, ...);

static const char modinfo_livepatch[]
	__attribute__((section(".modinfo"), used, aligned(1))) = "livepatch=Y";

int livepatch_show(char *buf)
{
	return sprintf(buf, "%s [%s]\n", saved_command_line, get_homonym_string());
}

#ifndef AMBIGUOUS
KLP_MODULE_RELOC(klp_test_target) klp_test_target_relocs[] = {
	KLP_SYMPOS(get_homonym_string, 2),
};
#endif
