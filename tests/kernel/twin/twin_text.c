// SPDX-License-Identifier: GPL-2.0
/* The static twin() in .text: the one a livepatch means. */
#include <linux/compiler.h>

static noinline __used int twin(void)
{
	return 1;
}

int klp_twin_text_value(void)
{
	return twin();
}
