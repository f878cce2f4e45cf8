/* SPDX-License-Identifier: Apache-2.0 */
/* Socket-level load balancing (cgroup sock_addr hooks): a connect() or sendmsg() to a frontend
 * goes to a backend picked once for the socket, and recvmsg()/getpeername() show the frontend
 * again, so the application never sees a backend address. No packet is rewritten afterwards and
 * no conntrack is needed: the socket is the flow. */
#ifndef SKIFF_BPF_LIB_SOCK_LB_H
#define SKIFF_BPF_LIB_SOCK_LB_H

#include "lb.h"

#define SKIFF_SOCK_ALLOW 1
#define SKIFF_SOCK_REJECT 0
#define SKIFF_ECONNREFUSED 111

/* The destination (connect, sendmsg) or the peer (recvmsg, getpeername) of `ctx`. */
static __always_inline void skiff_sock_get(struct bpf_sock_addr *ctx, __u8 family, __u8 *addr,
					   __be16 *port)
{
	__u32 w;

	if (family == SKIFF_AF_INET) {
		w = ctx->user_ip4;
		skiff_memcpy(addr, &w, 4);
	} else {
		w = ctx->user_ip6[0];
		skiff_memcpy(addr, &w, 4);
		w = ctx->user_ip6[1];
		skiff_memcpy(addr + 4, &w, 4);
		w = ctx->user_ip6[2];
		skiff_memcpy(addr + 8, &w, 4);
		w = ctx->user_ip6[3];
		skiff_memcpy(addr + 12, &w, 4);
	}
	/* user_port holds the network-order port in its low 16 bits. */
	w = ctx->user_port;
	*port = (__be16)w;
}

static __always_inline void skiff_sock_set(struct bpf_sock_addr *ctx, __u8 family,
					   const __u8 *addr, __be16 port)
{
	__u32 w;

	if (family == SKIFF_AF_INET) {
		skiff_memcpy(&w, addr, 4);
		ctx->user_ip4 = w;
	} else {
		skiff_memcpy(&w, addr, 4);
		ctx->user_ip6[0] = w;
		skiff_memcpy(&w, addr + 4, 4);
		ctx->user_ip6[1] = w;
		skiff_memcpy(&w, addr + 8, 4);
		ctx->user_ip6[2] = w;
		skiff_memcpy(&w, addr + 12, 4);
		ctx->user_ip6[3] = w;
	}
	ctx->user_port = (__u32)port;
}

/* ::ffff:a.b.c.d, as an AF_INET6 socket addresses an IPv4 peer. */
static __always_inline bool skiff_v4_mapped(const __u8 *addr)
{
	__u64 head;
	__u32 mid;

	skiff_memcpy(&head, addr, 8);
	skiff_memcpy(&mid, addr + 8, 4);
	return head == 0 && mid == bpf_htonl(0x0000ffff);
}

/* a.b.c.d (key layout: 4 bytes, then zeros) -> ::ffff:a.b.c.d, and back. */
static __always_inline void skiff_map_v4(__u8 *out, const __u8 *v4)
{
	__u32 a, ffff = bpf_htonl(0x0000ffff);

	skiff_memcpy(&a, v4, 4);
	skiff_memset(out, 0, 8);
	skiff_memcpy(out + 8, &ffff, 4);
	skiff_memcpy(out + 12, &a, 4);
}

static __always_inline void skiff_unmap_v4(__u8 *addr)
{
	__u32 a;

	skiff_memcpy(&a, addr + 12, 4);
	skiff_memset(addr, 0, 16);
	skiff_memcpy(addr, &a, 4);
}

/* connect() and sendmsg(): frontend -> backend. An AF_INET6 socket that addresses an IPv4
 * frontend as ::ffff:a.b.c.d is balanced over the IPv4 backends and sees them (and, on the way
 * back, the frontend) IPv4-mapped. */
static __always_inline int skiff_sock_forward(struct bpf_sock_addr *ctx, __u8 family)
{
	struct skiff_frontend_key fe = { .family = family };
	struct skiff_affinity_key akey = {};
	struct skiff_sock_revnat_key rkey = {};
	struct skiff_revnat rn = {};
	const __u32 origin = SKIFF_ORIGIN_IN_CLUSTER;
	struct skiff_service *svc;
	struct skiff_backend *be;
	__u64 cookie, netns, now;
	__u32 backend_id;
	bool mapped = false;
	int code;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return SKIFF_SOCK_ALLOW;
	fe.proto = (__u8)ctx->protocol;
	skiff_sock_get(ctx, family, fe.addr, &fe.port);
	if (family == SKIFF_AF_INET6 && skiff_v4_mapped(fe.addr)) {
		skiff_unmap_v4(fe.addr);
		fe.family = SKIFF_AF_INET;
		mapped = true;
	}
	svc = skiff_lookup_service(&fe, false);
	if (!svc)
		return SKIFF_SOCK_ALLOW;

	code = skiff_no_backend_code(svc, origin);
	if (code) {
		skiff_count_drop(svc->svc_id, code);
		bpf_set_retval(-SKIFF_ECONNREFUSED);
		return SKIFF_SOCK_REJECT;
	}
	now = bpf_ktime_get_ns();
	cookie = bpf_get_socket_cookie(ctx);
	netns = bpf_get_netns_cookie(ctx);
	akey.svc_id = svc->svc_id;
	akey.client_kind = SKIFF_AFF_CLIENT_NETNS;
	akey.family = fe.family;
	skiff_memcpy(akey.client, &netns, 8);
	backend_id = skiff_affinity_get(svc, &akey, origin, now);
	if (backend_id == SKIFF_ID_NONE)
		backend_id = skiff_maglev_pick(svc, origin, skiff_sock_hash(cookie, &fe));
	be = skiff_listed_backend(backend_id, svc->svc_id, fe.family);
	if (!be) {
		skiff_count_drop(svc->svc_id, SKIFF_DROP_NO_BACKEND);
		bpf_set_retval(-SKIFF_ECONNREFUSED);
		return SKIFF_SOCK_REJECT;
	}
	skiff_affinity_put(svc, &akey, backend_id, now);

	/* The reverse entry in the socket's own terms (IPv4-mapped for a mapped peer). */
	rkey.cookie = cookie;
	rkey.port = be->port;
	rkey.family = family;
	rn.port = fe.port;
	rn.family = family;
	if (mapped) {
		skiff_map_v4(rkey.addr, be->addr);
		skiff_map_v4(rn.addr, fe.addr);
	} else {
		skiff_memcpy(rkey.addr, be->addr, 16);
		skiff_memcpy(rn.addr, fe.addr, 16);
	}
	bpf_map_update_elem(&skiff_sock_revnat, &rkey, &rn, BPF_ANY);

	skiff_sock_set(ctx, family, rkey.addr, be->port);
	skiff_count_new_flow(svc->svc_id, backend_id);
	skiff_count_global(SKIFF_GLOBAL_SOCK_TRANSLATED);
	return SKIFF_SOCK_ALLOW;
}

/* recvmsg() and getpeername(): backend -> frontend, for sockets that were translated. */
static __always_inline int skiff_sock_reverse(struct bpf_sock_addr *ctx, __u8 family)
{
	struct skiff_sock_revnat_key rkey = { .family = family };
	struct skiff_revnat *rn;

	rkey.cookie = bpf_get_socket_cookie(ctx);
	skiff_sock_get(ctx, family, rkey.addr, &rkey.port);
	rn = bpf_map_lookup_elem(&skiff_sock_revnat, &rkey);
	if (!rn || rn->family != family)
		return SKIFF_SOCK_ALLOW;
	skiff_sock_set(ctx, family, rn->addr, rn->port);
	return SKIFF_SOCK_ALLOW;
}

#endif /* SKIFF_BPF_LIB_SOCK_LB_H */
