/* SPDX-License-Identifier: Apache-2.0 */
/* Incremental Internet checksum updates (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')). Words are
 * summed as they sit in memory: the one's complement sum does not depend on byte order as long
 * as the checksum field is read the same way. */
#ifndef SKIFF_BPF_LIB_CSUM_H
#define SKIFF_BPF_LIB_CSUM_H

#include "common.h"

static __always_inline __u16 skiff_csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The difference of replacing `from` by `to` (n 16-bit words, n even and small), to add to a
 * complemented checksum. */
static __always_inline __u64 skiff_csum_diff_words(const __u8 *from, const __u8 *to, int n)
{
	__u64 sum = 0;
	__u16 a, b;
	int i;

#pragma unroll
	for (i = 0; i < n; i++) {
		skiff_memcpy(&a, from + 2 * i, 2);
		skiff_memcpy(&b, to + 2 * i, 2);
		sum += (__u16)~a;
		sum += b;
	}
	return sum;
}

/* The sum of n 16-bit words at p (n small and constant). */
static __always_inline __u64 skiff_csum_sum(const void *p, int n)
{
	const __u8 *b = p;
	__u64 sum = 0;
	__u16 w;
	int i;

#pragma unroll
	for (i = 0; i < n; i++) {
		skiff_memcpy(&w, b + 2 * i, 2);
		sum += w;
	}
	return sum;
}

/* New checksum for `check` after the bytes summed in `diff` changed. */
static __always_inline __u16 skiff_csum_apply(__u16 check, __u64 diff)
{
	return ~skiff_csum_fold((__u64)(__u16)~check + diff);
}

#endif /* SKIFF_BPF_LIB_CSUM_H */
