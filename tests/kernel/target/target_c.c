// SPDX-License-Identifier: GPL-2.0
/*
 * klp_test_target, file C: data in every storage class, each with its own
 * value so a wrong relocation shows.
 */
#include <linux/module.h>
#include <linux/cache.h>
#include <linux/jump_label.h>

int klp_global_int = 101;
const int klp_const_global_int = 102;
static int klp_static_int __used = 103;
static const int klp_static_const_int __used = 104;
int klp_read_mostly_int __read_mostly = 105;
int klp_global_array[4] = { 201, 202, 203, 204 };
static int klp_static_array[4] __used = { 301, 302, 303, 304 };
static const int klp_static_const_array[4] __used = { 401, 402, 403, 404 };

/* A module static key: a livepatch may not use it with static_branch_*(). */
DEFINE_STATIC_KEY_FALSE(klp_test_key);
