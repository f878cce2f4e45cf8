/* SPDX-License-Identifier: Apache-2.0 */
/* Conntrack of the XDP path: a forward entry keyed by the client's tuple to the frontend, a
 * reply entry keyed by the backend's tuple to the client. Entries expire lazily: a lookup
 * ignores an entry older than its lifetime, and the LRU reclaims it. */
#ifndef SKIFF_BPF_LIB_CONNTRACK_H
#define SKIFF_BPF_LIB_CONNTRACK_H

#include "config.h"
#include "maps.h"

#define SKIFF_TCP_FIN 0x01
#define SKIFF_TCP_SYN 0x02
#define SKIFF_TCP_RST 0x04
#define SKIFF_TCP_ACK 0x10

static __always_inline bool skiff_ct_alive(const struct skiff_ct_entry *e, __u8 proto, __u64 now)
{
	__u64 life = proto == IPPROTO_TCP ? skiff_cfg_ct_tcp_ns : skiff_cfg_ct_other_ns;

	if (e->flags & SKIFF_CT_F_CLOSING)
		life = skiff_cfg_ct_closing_ns;
	return now - e->last_seen_ns < life;
}

/* Marks a TCP flow closing on FIN or RST; refreshes last_seen. */
static __always_inline void skiff_ct_touch(struct skiff_ct_entry *e, __u8 proto, __u8 tcp_flags,
					   __u64 now, __u32 extra_flags)
{
	__u32 flags = e->flags | extra_flags;

	if (proto == IPPROTO_TCP && (tcp_flags & (SKIFF_TCP_FIN | SKIFF_TCP_RST)))
		flags |= SKIFF_CT_F_CLOSING;
	if (flags != e->flags)
		e->flags = flags;
	e->last_seen_ns = now;
}

/* A SYN without ACK on a closing entry starts a new connection that reuses the tuple. */
static __always_inline bool skiff_ct_reopened(const struct skiff_ct_entry *e, __u8 proto,
					      __u8 tcp_flags)
{
	return proto == IPPROTO_TCP && (e->flags & SKIFF_CT_F_CLOSING) &&
	       (tcp_flags & (SKIFF_TCP_SYN | SKIFF_TCP_ACK)) == SKIFF_TCP_SYN;
}

/* Records a new flow in both directions. Returns 0, or the first failed update's error: the
 * caller forwards anyway (Maglev alone picks the same backend for the next packet). */
static __always_inline int skiff_ct_create(const struct skiff_ct_key *fwd,
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
	struct skiff_ct_key rev = {
		.sport = be->port,
		.dport = fwd->sport,
		.proto = fwd->proto,
		.family = fwd->family,
		.dir = SKIFF_CT_REPLY,
	};
	int err;

	skiff_memcpy(e.frontend_addr, fwd->daddr, 16);
	skiff_memcpy(rev.saddr, be->addr, 16);
	skiff_memcpy(rev.daddr, fwd->saddr, 16);
	err = bpf_map_update_elem(&skiff_ct, fwd, &e, BPF_ANY);
	if (err)
		return err;
	return bpf_map_update_elem(&skiff_ct, &rev, &e, BPF_ANY);
}

#endif /* SKIFF_BPF_LIB_CONNTRACK_H */
