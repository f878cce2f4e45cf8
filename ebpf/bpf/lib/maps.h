/* SPDX-License-Identifier: Apache-2.0 */
/* The maps of lb_abi.h, defined once for every program (the loader shares them between the XDP
 * and the socket objects by reusing the first object's map fds). */
#ifndef SKIFF_BPF_LIB_MAPS_H
#define SKIFF_BPF_LIB_MAPS_H

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SKIFF_MAX_FRONTENDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct skiff_frontend_key);
	__type(value, struct skiff_service);
} skiff_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SKIFF_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct skiff_backend);
} skiff_backends SEC(".maps");

/* Ring memory: every Maglev ring is an extent of backend ids (lb_abi.h), in blocks of
 * SKIFF_RING_ALIGN. Mmapable, so the map writer fills rings with memcpy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SKIFF_RING_ENTRIES / SKIFF_RING_ALIGN);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct skiff_ring_block);
} skiff_rings SEC(".maps");

/* Conntrack slots in buckets of SKIFF_CT_WAYS (lb_abi.h; conntrack.h manages them). One table
 * for all CPUs: the reply direction of a flow may arrive on another CPU than its forward one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SKIFF_CT_SIZE);
	__type(key, __u32);
	__type(value, struct skiff_ct_slot);
} skiff_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SKIFF_SOCK_REVNAT_SIZE);
	__type(key, struct skiff_sock_revnat_key);
	__type(value, struct skiff_revnat);
} skiff_sock_revnat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SKIFF_AFFINITY_SIZE);
	__type(key, struct skiff_affinity_key);
	__type(value, struct skiff_affinity_entry);
} skiff_affinity SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SKIFF_SRC_RANGES_SIZE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct skiff_src_range_key);
	__type(value, __u8);
} skiff_src_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SKIFF_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct skiff_svc_stats);
} skiff_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SKIFF_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct skiff_be_stats);
} skiff_be_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SKIFF_GLOBAL_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} skiff_global SEC(".maps");

/* For the loader and tools only (no program looks at it). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SKIFF_MAX_SERVICES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct skiff_svc_name);
} skiff_svc_names SEC(".maps");

/* [0] = SKIFF_ABI_VERSION of the maps pinned with it (for the loader only). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} skiff_meta SEC(".maps");

#endif /* SKIFF_BPF_LIB_MAPS_H */
