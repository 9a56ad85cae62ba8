// SPDX-License-Identifier: GPL-2.0
/*
 * Livepatch of klp_test_long reading its static string through the klp
 * symbol .klp.sym.klp_test_long.<name>,0 of 127 bytes. Linux before 6.1
 * keeps at most 127 bytes of a livepatch module's symbol name (KSYM_NAME_LEN
 * 128) in the copy it reads module-specific klp symbols from.
 */
#include <linux/module.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern const char long_name[]
	KLP_RELOC_SYMBOL(klp_test_long, klp_test_long, klp_test_long_name_127_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx);

static const char *lp_value(void)
{
	return long_name;
}

KLP_TEST_PATCH("klp_test_long", "klp_test_long_value", lp_value);
