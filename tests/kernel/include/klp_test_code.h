/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KLP_TEST_CODE(fn): a read-only module parameter "code" showing the first
 * 16 instruction words of fn as they are in memory after loading, in hex,
 * comma-separated (tests/kernel_xarch.rs compares them with the .ko).
 */
#ifndef KLP_TEST_CODE_H
#define KLP_TEST_CODE_H

#include <linux/moduleparam.h>
#include <linux/sysfs.h>

#define KLP_TEST_CODE(fn)						\
	static int klp_test_code_get(char *buf, const struct kernel_param *kp) \
	{								\
		const u32 *p = (const u32 *)(fn);			\
		int i, n = 0;						\
									\
		for (i = 0; i < 16; i++)				\
			n += sysfs_emit_at(buf, n, "%s%08x", i ? "," : "", \
					   READ_ONCE(p[i]));		\
		n += sysfs_emit_at(buf, n, "\n");			\
		return n;						\
	}								\
	static const struct kernel_param_ops klp_test_code_ops = {	\
		.get = klp_test_code_get,				\
	};								\
	module_param_cb(code, &klp_test_code_ops, NULL, 0444)

#endif
