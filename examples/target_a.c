// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * One of the two files of the example target module klp_test_target: each
 * has its own static get_homonym_string(), so the name is there twice and
 * only a position (1 for target_a.c, 2 for target_b.c) tells them apart.
 */
static const char modinfo_name[]
	__attribute__((section(".modinfo"), used, aligned(1))) = "name=klp_test_target";

static __attribute__((used, noinline)) const char *get_homonym_string(void)
{
	return "homonym string A";
}

const char *target_a(void)
{
	return get_homonym_string();
}
