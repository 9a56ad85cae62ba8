// SPDX-License-Identifier: GPL-2.0
/*
 * The plain-C twin patch with a klp_object for klp_test_twin: what a
 * conversion against klp_test_twin's map needs, or its
 * .klp.rela.klp_test_twin.* would never be applied.
 */
#define KLP_TWIN_TARGET "klp_test_twin"
#include "klp_test_twin_plain.c"
