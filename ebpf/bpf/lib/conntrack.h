/* SPDX-License-Identifier: Apache-2.0 */
/* Conntrack of the XDP path: a forward entry keyed by the client's tuple to the frontend, a
 * reply entry keyed by the backend's tuple to the client. Entries expire lazily: a lookup
 * ignores an entry older than its lifetime, and an insert reuses its slot.
 *
 * The table (skiff_ct, lb_abi.h) is managed here rather than by a kernel LRU_HASH: a slot is
 * found by hashing the key to a bucket of SKIFF_CT_WAYS slots and comparing keys, and written
 * with plain stores. A new entry takes a free or expired slot of its bucket, else the least
 * recently seen one (unless the map is a HASH, LoadOptions::conntrackWithoutLru: then a slot is
 * made only while the map has room, and a full bucket refuses). */
#ifndef SKIFF_BPF_LIB_CONNTRACK_H
#define SKIFF_BPF_LIB_CONNTRACK_H

#include "config.h"
#include "maps.h"

#define SKIFF_TCP_FIN 0x01
#define SKIFF_TCP_SYN 0x02
#define SKIFF_TCP_RST 0x04
#define SKIFF_TCP_ACK 0x10

#define SKIFF_CT_NO_SLOT 0xffffffffu

/* The fields of the kernel's struct bpf_map the table needs (CO-RE: offsets from the kernel's
 * BTF): the loader sizes skiff_ct and may turn it into a HASH. */
struct bpf_map___skiff {
	enum bpf_map_type map_type;
	__u32 max_entries;
} __attribute__((preserve_access_index));

/* The monotonic clock at tick granularity: bpf_ktime_get_ns() once per jiffy, a cached value
 * otherwise (bpf_jiffies64() is a plain load; the clock read costs about 30 ns a packet). CPUs
 * race on the cache harmlessly: each writes a fresh time, the nanoseconds before the jiffy. */
__u64 skiff_clock_jiffies;
__u64 skiff_clock_ns;

static __always_inline __u64 skiff_now(void)
{
	__u64 j = bpf_jiffies64();

	if (skiff_clock_jiffies != j) {
		skiff_clock_ns = bpf_ktime_get_ns();
		asm volatile("" ::: "memory");
		skiff_clock_jiffies = j;
	}
	return skiff_clock_ns;
}

/* An 8-byte load from an 8-aligned address (ct keys on the stack are aligned(8); slots are map
 * values, 8-aligned). */
static __always_inline __u64 skiff_ld64(const void *p)
{
	__u64 w;

	skiff_memcpy(&w, __builtin_assume_aligned(p, 8), 8);
	return w;
}

static __always_inline void skiff_st64(void *p, __u64 w)
{
	skiff_memcpy(__builtin_assume_aligned(p, 8), &w, 8);
}

/* The bucket hash of a conntrack key: its client side only (the source of a forward key, the
 * destination of a reply key), so that both entries of a flow share a bucket; the keys are
 * compared whole. Products of the words summed, then folded: not the Maglev flow hash
 * (skiff_flow_hash), which is the ABI's and costs five dependent mixing rounds. */
static __always_inline __u64 skiff_ct_hash(const struct skiff_ct_key *k)
{
	const __u8 *addr = k->dir == SKIFF_CT_REPLY ? k->daddr : k->saddr;
	__u16 port = k->dir == SKIFF_CT_REPLY ? k->dport : k->sport;
	__u64 h = skiff_ld64(addr) * 0x9e3779b97f4a7c15ULL +
		  skiff_ld64(addr + 8) * 0xc2b2ae3d27d4eb4fULL +
		  ((__u64)port | (__u64)k->proto << 16 | (__u64)k->family << 24) *
			  0x165667b19e3779f9ULL;

	h ^= h >> 32;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h;
}

/* The first slot of the bucket of `k`. */
static __always_inline __u32 skiff_ct_bucket(const struct skiff_ct_key *k)
{
	const struct bpf_map___skiff *map = (const void *)&skiff_ct;
	__u32 n = map->max_entries;
	__u32 ways = n < SKIFF_CT_WAYS ? n : SKIFF_CT_WAYS;
	__u32 buckets = n < SKIFF_CT_WAYS ? 1 : n / SKIFF_CT_WAYS;

	return (__u32)(((skiff_ct_hash(k) >> 32) * buckets) >> 32) * ways;
}

/* Starts loading the bucket at `first` (a load whose value is not waited for): the cache miss
 * of a new flow's bucket then overlaps the service lookup. */
static __always_inline void skiff_ct_prefetch(__u32 first)
{
	struct skiff_ct_slot *s = bpf_map_lookup_elem(&skiff_ct, &first);

	if (s) {
		__u64 w = skiff_ld64(s);

		asm volatile("" : : "r"(w));
	}
}

static __always_inline bool skiff_ct_key_eq(const struct skiff_ct_key *a,
					    const struct skiff_ct_key *b)
{
	const __u8 *x = (const __u8 *)a, *y = (const __u8 *)b;

	return ((skiff_ld64(x) ^ skiff_ld64(y)) | (skiff_ld64(x + 8) ^ skiff_ld64(y + 8)) |
		(skiff_ld64(x + 16) ^ skiff_ld64(y + 16)) |
		(skiff_ld64(x + 24) ^ skiff_ld64(y + 24)) |
		(skiff_ld64(x + 32) ^ skiff_ld64(y + 32))) == 0;
}

static __always_inline bool skiff_ct_alive(const struct skiff_ct_entry *e, __u8 proto, __u64 now)
{
	__u64 life = proto == IPPROTO_TCP ? skiff_cfg_ct_tcp_ns : skiff_cfg_ct_other_ns;

	if (e->flags & SKIFF_CT_F_CLOSING)
		life = skiff_cfg_ct_closing_ns;
	/* Signed: another CPU's cached clock may have stamped it a little ahead of ours. */
	return (__s64)(now - e->last_seen_ns) < (__s64)life;
}

/* What a lookup saw: the index of the key's slot, or where a new entry for the key would go. */
struct skiff_ct_pos {
	__u32 first;  /* the bucket's first slot */
	__u32 found;  /* the key's slot, or SKIFF_CT_NO_SLOT */
	__u32 slot;   /* for a new entry: a slot of the bucket, or SKIFF_CT_NO_SLOT */
	__u32 absent; /* that slot does not exist yet (HASH) */
};

/* The slot holding `k`, or NULL; with `pos`, also where a new entry for `k` would go: the first
 * slot that is missing, free or expired, else (unless the map is a HASH) the least recently
 * seen, never slot `keep`. */
static __always_inline struct skiff_ct_slot *skiff_ct_find_in(const struct skiff_ct_key *k,
							      __u32 first, __u64 now,
							      struct skiff_ct_pos *pos, __u32 keep)
{
	const struct bpf_map___skiff *map = (const void *)&skiff_ct;
	__u32 n = map->max_entries;
	__u32 ways = n < SKIFF_CT_WAYS ? n : SKIFF_CT_WAYS;
	bool evict = pos && map->map_type != BPF_MAP_TYPE_HASH;
	__u64 oldest = ~0ULL;
	bool free_found = false;
	__u32 victim = SKIFF_CT_NO_SLOT, absent = 0;
	int i;

#pragma unroll
	for (i = 0; i < SKIFF_CT_WAYS; i++) {
		__u32 index = first + i;
		struct skiff_ct_slot *s;

		if ((__u32)i >= ways)
			break;
		s = bpf_map_lookup_elem(&skiff_ct, &index);
		if (!s) {
			if (!free_found) {
				victim = index;
				absent = 1;
				free_found = true;
			}
			continue;
		}
		if (skiff_ct_key_eq(&s->key, k)) {
			if (pos) {
				pos->first = first;
				pos->found = index;
				pos->slot = SKIFF_CT_NO_SLOT;
				pos->absent = 0;
			}
			return s;
		}
		if (!pos || free_found || index == keep)
			continue;
		if (s->key.family == 0 || !skiff_ct_alive(&s->entry, s->key.proto, now)) {
			victim = index;
			absent = 0;
			free_found = true;
		} else if (evict && s->entry.last_seen_ns < oldest) {
			oldest = s->entry.last_seen_ns;
			victim = index;
		}
	}
	if (pos) {
		pos->first = first;
		pos->found = SKIFF_CT_NO_SLOT;
		pos->slot = victim;
		pos->absent = absent;
	}
	return NULL;
}

static __always_inline struct skiff_ct_slot *skiff_ct_find(const struct skiff_ct_key *k, __u64 now,
							   struct skiff_ct_pos *pos, __u32 keep)
{
	return skiff_ct_find_in(k, skiff_ct_bucket(k), now, pos, keep);
}

static __always_inline struct skiff_ct_slot *skiff_ct_lookup(const struct skiff_ct_key *k)
{
	return skiff_ct_find(k, 0, NULL, SKIFF_CT_NO_SLOT);
}

/* Never written: the initial value of a slot made in a HASH (words, not the struct, so that
 * the skeleton does not define struct skiff_ct_slot beside lb_abi.h). */
__u64 skiff_ct_zero[sizeof(struct skiff_ct_slot) / 8];

/* The slot `pos` names, made if it is missing; NULL if there is none (a full HASH). */
static __always_inline struct skiff_ct_slot *skiff_ct_claim(const struct skiff_ct_pos *pos)
{
	__u32 index = pos->slot;

	if (index == SKIFF_CT_NO_SLOT)
		return NULL;
	if (pos->absent && bpf_map_update_elem(&skiff_ct, &index, skiff_ct_zero, BPF_NOEXIST))
		return NULL;
	return bpf_map_lookup_elem(&skiff_ct, &index);
}

/* Writes `k` and `e` into `s`: the key is cleared first and written last, so a reader on
 * another CPU matches either the old key or the new one with its entry complete (x86 keeps
 * stores in order; elsewhere the backend's service check rejects a mixed slot). */
static __always_inline void skiff_ct_fill(struct skiff_ct_slot *s, const struct skiff_ct_key *k,
					  const struct skiff_ct_entry *e)
{
	const __u8 *src = (const __u8 *)k;
	__u8 *dst = (__u8 *)&s->key;

	s->key.family = 0;
	asm volatile("" ::: "memory");
	s->entry = *e;
	asm volatile("" ::: "memory");
	skiff_st64(dst, skiff_ld64(src));
	skiff_st64(dst + 8, skiff_ld64(src + 8));
	skiff_st64(dst + 16, skiff_ld64(src + 16));
	skiff_st64(dst + 24, skiff_ld64(src + 24));
	skiff_st64(dst + 32, skiff_ld64(src + 32));
}

/* Marks a TCP flow closing on FIN or RST; refreshes last_seen. Writes only what changed, so a
 * flow's slot stays clean within a tick. */
static __always_inline void skiff_ct_touch(struct skiff_ct_entry *e, __u8 proto, __u8 tcp_flags,
					   __u64 now, __u32 extra_flags)
{
	__u32 flags = e->flags | extra_flags;

	if (proto == IPPROTO_TCP && (tcp_flags & (SKIFF_TCP_FIN | SKIFF_TCP_RST)))
		flags |= SKIFF_CT_F_CLOSING;
	if (flags != e->flags)
		e->flags = flags;
	if (e->last_seen_ns != now)
		e->last_seen_ns = now;
}

/* A SYN without ACK on a closing entry starts a new connection that reuses the tuple. */
static __always_inline bool skiff_ct_reopened(const struct skiff_ct_entry *e, __u8 proto,
					      __u8 tcp_flags)
{
	return proto == IPPROTO_TCP && (e->flags & SKIFF_CT_F_CLOSING) &&
	       (tcp_flags & (SKIFF_TCP_SYN | SKIFF_TCP_ACK)) == SKIFF_TCP_SYN;
}

/* Records a new flow in both directions: the forward entry goes into `fwd_slot` (the slot that
 * held the forward key, stale) or where the forward lookup said (`fwd_pos`), the reply entry
 * into the same bucket (the client side is the same), never over the forward one. Returns 0, or
 * -1 if an entry found no slot: the caller forwards anyway (Maglev alone picks the same backend
 * for the next packet). */
static __always_inline int skiff_ct_create(const struct skiff_ct_key *fwd,
					   struct skiff_ct_slot *fwd_slot,
					   const struct skiff_ct_pos *fwd_pos,
					   const struct skiff_backend *be, __u32 backend_id,
					   __u32 svc_id, __u64 now)
{
	struct skiff_ct_entry e = {
		.backend_id = backend_id,
		.svc_id = svc_id,
		.created_ns = now,
		.last_seen_ns = now,
		.frontend_port = fwd->dport,
	};
	struct skiff_ct_key rev __attribute__((aligned(8))) = {
		.sport = be->port,
		.dport = fwd->sport,
		.proto = fwd->proto,
		.family = fwd->family,
		.dir = SKIFF_CT_REPLY,
	};
	struct skiff_ct_pos rev_pos = {};
	struct skiff_ct_slot *s;

	skiff_memcpy(e.frontend_addr, fwd->daddr, 16);
	skiff_memcpy(rev.saddr, be->addr, 16);
	skiff_memcpy(rev.daddr, fwd->saddr, 16);
	s = fwd_slot ? fwd_slot : skiff_ct_claim(fwd_pos);
	if (!s)
		return -1;
	skiff_ct_fill(s, fwd, &e);
	s = skiff_ct_find_in(&rev, fwd_pos->first, now, &rev_pos,
			     fwd_slot ? fwd_pos->found : fwd_pos->slot);
	if (!s)
		s = skiff_ct_claim(&rev_pos);
	if (!s)
		return -1;
	skiff_ct_fill(s, &rev, &e);
	return 0;
}

#endif /* SKIFF_BPF_LIB_CONNTRACK_H */
