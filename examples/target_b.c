// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * One of the two files of the example target module klp_test_target: each
 * has its own static get_homonym_string(), so the name is there twice and
 * only a position (1 for target_a.c, 2 for target_b.c) tells them apart.
 */

static __attribute__((used, noinline)) const char *get_homonym_string(void)
{
	return "homonym string B";
}

const char *target_b(void)
{
	return get_homonym_string();
}
