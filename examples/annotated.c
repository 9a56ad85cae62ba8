// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * A livepatch fragment, as a kernel engineer writes it: the replacement
 * function reads vmlinux's non-exported saved_command_line and calls a
 * static function of a module that exists twice in that module (position 2).
 * scripts/demo compiles it with gcc and converts it.
 */
#include "klp_convert.h"

extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
extern const char *get_homonym_string(void)
	KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, get_homonym_string, 2);

extern int sprintf(char *buf, const char *fmt, ...);

static const char modinfo_livepatch[]
	__attribute__((section(".modinfo"), used, aligned(1))) = "livepatch=Y";

int livepatch_show(char *buf)
{
	return sprintf(buf, "%s [%s]\n", saved_command_line, get_homonym_string());
}
