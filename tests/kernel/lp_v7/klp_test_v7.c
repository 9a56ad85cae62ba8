// SPDX-License-Identifier: GPL-2.0
/*
 * The klp-convert v7 selftest scenarios, as one livepatch of klp_test_target,
 * converted with symbol maps (unique names resolve by themselves):
 *
 * - statics renamed with __asm__ ("klp_string.12345"), annotated;
 * - a function-local static (klp_local_counter.<n>), annotated;
 * - one vmlinux symbol referenced from three text sections, 1, 2 and 3 times,
 *   and a target function reached through a pointer stored in .data;
 * - data of every storage class: global, const, static, static const,
 *   __read_mostly, integers and arrays, reached from .text, from pointers in
 *   .data and from const pointers in .rodata;
 * - a vmlinux per-CPU variable (process_counts: its "address" is an offset
 *   into the per-CPU area, reached by a %gs-relative PC32 access) and a
 *   global (total_forks), neither exported;
 * - a vmlinux static key used with static_branch_unlikely(): its
 *   relocations land in __jump_table, which is allowed for vmlinux.
 */
#include <linux/module.h>
#include <linux/jump_label.h>
#include "klp_test_patch.h"
#include "klp_convert.h"

extern int klp_global_int;
extern const int klp_const_global_int;
extern int klp_static_int;
extern const int klp_static_const_int;
extern int klp_read_mostly_int;
extern int klp_global_array[4];
extern int klp_static_array[4];
extern const int klp_static_const_array[4];
extern const char klp_string_a[]
	KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, klp_string.12345);
extern const char klp_string_b[]
	KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, klp_string.67890);
/*
 * The target's function-local static goes by the compiler's name for it,
 * klp_local_counter.<n>, <n> counting that file's local statics (macros'
 * included). An author copies it from kallsyms; the test reads it from the
 * built target and passes it in.
 */
extern int klp_local_counter
	KLP_RELOC_SYMBOL(klp_test_target, klp_test_target, KLP_LOCAL_COUNTER);
extern char *saved_command_line;
DECLARE_PER_CPU(unsigned long, process_counts);
extern unsigned long total_forks;
/*
 * The vmlinux static key: sched_schedstats (CONFIG_SCHEDSTATS, Debian's
 * kernels have it); tests/kernel_xarch.rs names another false, non-exported
 * key of its small kernels, which lack it.
 */
#ifndef KLP_V7_KEY
#define KLP_V7_KEY sched_schedstats
#endif
extern struct static_key_false KLP_V7_KEY;
const char *klp_test_target_b(void);

int *klp_v7_data_ptrs[] = {
	&klp_global_int, &klp_static_int, &klp_read_mostly_int,
	&klp_global_array[3], &klp_static_array[2],
};
const int *const klp_v7_rodata_ptrs[] = {
	&klp_const_global_int, &klp_static_const_int, &klp_static_const_array[1],
};
const char *(*klp_v7_fn_ptrs[])(void) = { klp_test_target_b };

static noinline __section(".text.klp_one") int one(void)
{
	return saved_command_line[0];
}

static noinline __section(".text.klp_two") int two(void)
{
	return (saved_command_line[0] + READ_ONCE(saved_command_line)[0]) / 2;
}

static noinline __section(".text.klp_three") int three(void)
{
	return (saved_command_line[0] + READ_ONCE(saved_command_line)[0] +
		READ_ONCE(saved_command_line)[0]) / 3;
}

static char value[256];

static const char *lp_value(void)
{
	int key = static_branch_unlikely(&KLP_V7_KEY) ? 1 : 0;
	/* Every process counted on this CPU is a fork (one CPU here). */
	unsigned long here = this_cpu_read(process_counts);
	const char *percpu = here > 0 && here <= READ_ONCE(total_forks) ? "ok" : "bad";

	snprintf(value, sizeof(value),
		 "v7 data=%d,%d,%d,%d,%d rodata=%d,%d,%d text=%d,%d,%d sections=%d,%d,%d strings=%s|%s fn=%s key=%d local=%d percpu=%s",
		 *READ_ONCE(klp_v7_data_ptrs[0]), *READ_ONCE(klp_v7_data_ptrs[1]),
		 *READ_ONCE(klp_v7_data_ptrs[2]), *READ_ONCE(klp_v7_data_ptrs[3]),
		 *READ_ONCE(klp_v7_data_ptrs[4]), *READ_ONCE(klp_v7_rodata_ptrs[0]),
		 *READ_ONCE(klp_v7_rodata_ptrs[1]), *READ_ONCE(klp_v7_rodata_ptrs[2]),
		 klp_global_int + klp_const_global_int, klp_static_int + klp_static_const_int,
		 klp_read_mostly_int + klp_static_const_array[3],
		 one(), two(), three(), klp_string_a, klp_string_b, READ_ONCE(klp_v7_fn_ptrs[0])(), key,
		 READ_ONCE(klp_local_counter), percpu);
	return value;
}

KLP_TEST_PATCH("klp_test_target", "klp_test_target_value", lp_value);
