/* SPDX-License-Identifier: Apache-2.0 */
/* Per-CPU counters: plain increments, no atomics. */
#ifndef SKIFF_BPF_LIB_STATS_H
#define SKIFF_BPF_LIB_STATS_H

#include "maps.h"

static __always_inline void skiff_count_global(__u32 index)
{
	__u64 *c = bpf_map_lookup_elem(&skiff_global, &index);

	if (c)
		*c += 1;
}

/* Counts a drop (negative SKIFF_DROP_* code) against a service, or globally with svc_id 0.
 * Returns the code. */
static __always_inline int skiff_count_drop(__u32 svc_id, int code)
{
	__u32 index = SKIFF_DROP_INDEX(code);
	struct skiff_svc_stats *s;

	if (index >= SKIFF_DROP_REASON_COUNT)
		return code;
	if (svc_id == SKIFF_ID_NONE) {
		skiff_count_global(index);
		return code;
	}
	s = bpf_map_lookup_elem(&skiff_svc_stats, &svc_id);
	if (s)
		s->drops[index] += 1;
	return code;
}

/* Adds a forwarded packet to the counters looked up already (either may be NULL). */
static __always_inline void skiff_count_forward_to(struct skiff_svc_stats *s,
						   struct skiff_be_stats *b, __u64 bytes,
						   bool new_flow)
{
	if (s) {
		s->packets += 1;
		s->bytes += bytes;
		s->new_flows += new_flow;
	}
	if (b) {
		b->packets += 1;
		b->bytes += bytes;
		b->new_flows += new_flow;
	}
}

static __always_inline void skiff_count_forward(__u32 svc_id, __u32 backend_id, __u64 bytes,
						bool new_flow)
{
	skiff_count_forward_to(bpf_map_lookup_elem(&skiff_svc_stats, &svc_id),
			       bpf_map_lookup_elem(&skiff_be_stats, &backend_id), bytes, new_flow);
}

/* The counters skiff_count_forward_to adds to, their loads started (not waited for) so that
 * their cache misses overlap the lookups in between instead of coming last; the pointers are
 * kept, so the counting does not look them up again. */
static __always_inline struct skiff_svc_stats *skiff_prefetch_svc_stats(__u32 svc_id)
{
	struct skiff_svc_stats *s = bpf_map_lookup_elem(&skiff_svc_stats, &svc_id);

	if (s) {
		__u64 w = s->packets;

		asm volatile("" : : "r"(w));
	}
	return s;
}

static __always_inline struct skiff_be_stats *skiff_prefetch_be_stats(__u32 backend_id)
{
	struct skiff_be_stats *b = bpf_map_lookup_elem(&skiff_be_stats, &backend_id);

	if (b) {
		__u64 w = b->packets;

		asm volatile("" : : "r"(w));
	}
	return b;
}

/* A new flow that is no packet yet (socket LB: a connect() or sendmsg() translated). */
static __always_inline void skiff_count_new_flow(__u32 svc_id, __u32 backend_id)
{
	struct skiff_svc_stats *s = bpf_map_lookup_elem(&skiff_svc_stats, &svc_id);
	struct skiff_be_stats *b = bpf_map_lookup_elem(&skiff_be_stats, &backend_id);

	if (s)
		s->new_flows += 1;
	if (b)
		b->new_flows += 1;
}

#endif /* SKIFF_BPF_LIB_STATS_H */
