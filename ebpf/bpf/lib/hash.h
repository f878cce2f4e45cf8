/* SPDX-License-Identifier: Apache-2.0 */
/* The flow hash of lb_abi.h (SKIFF_FLOW_HASH_SEED): skiff::dataplane::hashWords over 64-bit
 * words. */
#ifndef SKIFF_BPF_LIB_HASH_H
#define SKIFF_BPF_LIB_HASH_H

#include "common.h"

static __always_inline __u64 skiff_fmix64(__u64 k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

static __always_inline __u64 skiff_hash_begin(__u64 seed)
{
	return skiff_fmix64(seed ^ 0x9e3779b97f4a7c15ULL);
}

static __always_inline __u64 skiff_hash_word(__u64 h, __u64 w)
{
	h = skiff_fmix64(h ^ (w * 0x87c37b91114253d5ULL));
	return h * 5 + 0x52dce729;
}

static __always_inline __u64 skiff_hash_end(__u64 h, __u64 count)
{
	return skiff_fmix64(h ^ count);
}

/* The XDP flow hash of a forward tuple. */
static __always_inline __u64 skiff_flow_hash(const struct skiff_ct_key *k)
{
	__u64 w, h = skiff_hash_begin(SKIFF_FLOW_HASH_SEED);

	skiff_memcpy(&w, k->saddr, 8);
	h = skiff_hash_word(h, w);
	skiff_memcpy(&w, k->saddr + 8, 8);
	h = skiff_hash_word(h, w);
	skiff_memcpy(&w, k->daddr, 8);
	h = skiff_hash_word(h, w);
	skiff_memcpy(&w, k->daddr + 8, 8);
	h = skiff_hash_word(h, w);
	w = (__u64)k->sport | (__u64)k->dport << 16 | (__u64)k->proto << 32 |
	    (__u64)k->family << 40;
	h = skiff_hash_word(h, w);
	return skiff_hash_end(h, 5);
}

/* The socket LB hash: one socket keeps one backend for all its datagrams. */
static __always_inline __u64 skiff_sock_hash(__u64 cookie, const struct skiff_frontend_key *fe)
{
	__u64 h = skiff_hash_begin(SKIFF_FLOW_HASH_SEED);

	h = skiff_hash_word(h, cookie);
	h = skiff_hash_word(h, (__u64)fe->port | (__u64)fe->proto << 32 | (__u64)fe->family << 40);
	return skiff_hash_end(h, 2);
}

#endif /* SKIFF_BPF_LIB_HASH_H */
