// SPDX-License-Identifier: GPL-2.0
/* klp_test_target, file B: the second homonym_string and get_homonym_string. */
#include <linux/compiler.h>

static const char homonym_string[] __used = "homonym string B";
static const char klp_string_b[] __asm__("klp_string.67890") __used = "klp string B";

static noinline __used const char *get_homonym_string(void)
{
	return homonym_string;
}

const char *klp_test_target_b(void)
{
	return get_homonym_string();
}
