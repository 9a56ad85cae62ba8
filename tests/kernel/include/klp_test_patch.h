/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The registration every test livepatch needs: one function of one object.
 * KLP_TEST_PATCH(obj, old, new): obj is NULL for vmlinux or a module name.
 */
#ifndef KLP_TEST_PATCH_H
#define KLP_TEST_PATCH_H

#include <linux/module.h>
#include <linux/livepatch.h>

#define KLP_TEST_PATCH(obj, old, new)					\
	static struct klp_func klp_test_funcs[] = {			\
		{ .old_name = old, .new_func = new },			\
		{ }							\
	};								\
	static struct klp_object klp_test_objs[] = {			\
		{ .name = obj, .funcs = klp_test_funcs },		\
		{ }							\
	};								\
	static struct klp_patch klp_test_patch = {			\
		.mod = THIS_MODULE,					\
		.objs = klp_test_objs,					\
	};								\
	static int __init klp_test_init(void)				\
	{								\
		return klp_enable_patch(&klp_test_patch);		\
	}								\
	static void __exit klp_test_exit(void)				\
	{								\
	}								\
	module_init(klp_test_init);					\
	module_exit(klp_test_exit);					\
	MODULE_LICENSE("GPL");						\
	MODULE_INFO(livepatch, "Y")

#endif
