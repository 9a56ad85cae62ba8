// SPDX-License-Identifier: GPL-2.0
/* klp_test_twinb: the same sources as klp_test_twin, linked in another order. */
#include "../twin/twin_main.c"
