/* SPDX-License-Identifier: Apache-2.0 */
/* Service lookup and backend selection shared by the XDP and socket paths: the rules of
 * dataplane/selection.h as the map writer encoded them (rings hold only eligible backends; the
 * backend flags carry per-origin eligibility). */
#ifndef SKIFF_BPF_LIB_LB_H
#define SKIFF_BPF_LIB_LB_H

#include "config.h"
#include "hash.h"
#include "maps.h"
#include "stats.h"

static __always_inline struct skiff_service *
skiff_lookup_service(struct skiff_frontend_key *fe, bool allow_wildcard)
{
	struct skiff_service *svc = bpf_map_lookup_elem(&skiff_services, fe);
	struct skiff_frontend_key any = {};

	if (svc || !allow_wildcard || !skiff_cfg_nodeport_wildcard)
		return svc;
	any.port = fe->port;
	any.family = fe->family;
	any.proto = fe->proto;
	svc = bpf_map_lookup_elem(&skiff_services, &any);
	if (svc && (svc->flags & SKIFF_SVC_F_WILDCARD))
		return svc;
	return NULL;
}

/* The drop code for a frontend whose origin has nothing to pick from, or 0. */
static __always_inline int skiff_no_backend_code(const struct skiff_service *svc, __u32 origin)
{
	if (origin >= SKIFF_ORIGIN_COUNT)
		return SKIFF_DROP_NO_BACKEND;
	if (svc->selection[origin] == SKIFF_SEL_NO_LOCAL_BACKENDS)
		return SKIFF_DROP_NO_LOCAL_BACKEND;
	if (svc->selection[origin] == SKIFF_SEL_NO_BACKENDS || svc->backend_count[origin] == 0 ||
	    svc->ring_size[origin] == 0 || svc->ring_start[origin] == SKIFF_ID_NONE)
		return SKIFF_DROP_NO_BACKEND;
	return 0;
}

/* A backend a conntrack entry or an affinity entry names, if it is still listed in `svc_id`
 * and of `family`. */
static __always_inline struct skiff_backend *skiff_listed_backend(__u32 backend_id, __u32 svc_id,
								  __u8 family)
{
	struct skiff_backend *be;

	if (backend_id == SKIFF_ID_NONE)
		return NULL;
	be = bpf_map_lookup_elem(&skiff_backends, &backend_id);
	if (!be || be->family != family || be->svc_id != svc_id)
		return NULL;
	return be;
}

static __always_inline __u8 skiff_eligible_flag(const struct skiff_service *svc, __u32 origin)
{
	__u32 local = origin == SKIFF_ORIGIN_EXTERNAL ? SKIFF_SVC_F_LOCAL_EXTERNAL :
							SKIFF_SVC_F_LOCAL_IN_CLUSTER;

	return (svc->flags & local) ? SKIFF_BE_F_ELIGIBLE_LOCAL : SKIFF_BE_F_ELIGIBLE_CLUSTER;
}

/* Maglev: the ring block holding position hash % ring_size of the origin's ring (the extent of
 * skiff_rings at ring_start) and the entry's index in it, or NULL. */
static __always_inline struct skiff_ring_block *
skiff_maglev_block(const struct skiff_service *svc, __u32 origin, __u64 hash, __u32 *slot)
{
	__u32 start, size, pos, index;

	if (origin >= SKIFF_ORIGIN_COUNT)
		return NULL;
	start = svc->ring_start[origin];
	size = svc->ring_size[origin];
	if (size == 0 || start == SKIFF_ID_NONE)
		return NULL;
	pos = start + (__u32)(hash % size);
	index = pos / SKIFF_RING_ALIGN;
	*slot = pos & (SKIFF_RING_ALIGN - 1);
	return bpf_map_lookup_elem(&skiff_rings, &index);
}

/* Maglev: the backend id at hash % ring_size of the origin's ring, or SKIFF_ID_NONE. */
static __always_inline __u32 skiff_maglev_pick(const struct skiff_service *svc, __u32 origin,
					       __u64 hash)
{
	struct skiff_ring_block *block;
	__u32 slot = 0;

	block = skiff_maglev_block(svc, origin, hash, &slot);
	return block ? block->backend_id[slot & (SKIFF_RING_ALIGN - 1)] : SKIFF_ID_NONE;
}

/* Starts loading the ring entry skiff_maglev_pick would read (a load not waited for), so that
 * its cache miss overlaps the conntrack lookup. */
static __always_inline void skiff_maglev_prefetch(const struct skiff_service *svc, __u32 origin,
						  __u64 hash)
{
	struct skiff_ring_block *block;
	__u32 slot = 0, id;

	block = skiff_maglev_block(svc, origin, hash, &slot);
	if (block) {
		id = block->backend_id[slot & (SKIFF_RING_ALIGN - 1)];
		asm volatile("" : : "r"(id));
	}
}

/* ClientIP affinity: the backend of the client's last new flow if it is recent and still
 * eligible (dataplane::affinityHolds), else SKIFF_ID_NONE. */
static __always_inline __u32 skiff_affinity_get(const struct skiff_service *svc,
						struct skiff_affinity_key *key, __u32 origin,
						__u64 now)
{
	struct skiff_affinity_entry *e;
	struct skiff_backend *be;

	if (!(svc->flags & SKIFF_SVC_F_AFFINITY))
		return SKIFF_ID_NONE;
	e = bpf_map_lookup_elem(&skiff_affinity, key);
	if (!e)
		return SKIFF_ID_NONE;
	/* Signed: the XDP clock is cached per CPU and tick (skiff_now), so another CPU's stamp may
	 * be a little ahead of this one's now. */
	if ((__s64)(now - e->last_used_ns) >=
	    (__s64)((__u64)svc->affinity_timeout_s * NSEC_PER_SEC))
		return SKIFF_ID_NONE;
	be = skiff_listed_backend(e->backend_id, svc->svc_id, key->family);
	if (!be || !(be->flags & skiff_eligible_flag(svc, origin)))
		return SKIFF_ID_NONE;
	return e->backend_id;
}

static __always_inline void skiff_affinity_put(const struct skiff_service *svc,
					       struct skiff_affinity_key *key, __u32 backend_id,
					       __u64 now)
{
	struct skiff_affinity_entry e = {
		.backend_id = backend_id,
		.last_used_ns = now,
	};

	if (svc->flags & SKIFF_SVC_F_AFFINITY)
		bpf_map_update_elem(&skiff_affinity, key, &e, BPF_ANY);
}

/* loadBalancerSourceRanges: whether `saddr` of `family` may reach the service. */
static __always_inline bool skiff_source_allowed(const struct skiff_service *svc, __u8 family,
						 const __u8 *saddr)
{
	struct skiff_src_range_key key = {
		.prefixlen = SKIFF_SRC_RANGE_PREFIX_BASE + (family == SKIFF_AF_INET ? 32 : 128),
		.svc_id = svc->svc_id,
		.family = family,
	};

	if (!(svc->flags & SKIFF_SVC_F_SRC_RANGES))
		return true;
	skiff_memcpy(key.addr, saddr, 16);
	return bpf_map_lookup_elem(&skiff_src_ranges, &key) != NULL;
}

#endif /* SKIFF_BPF_LIB_LB_H */
