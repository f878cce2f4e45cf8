/* SPDX-License-Identifier: Apache-2.0 */
/* The load balancer for traffic arriving at the node (NodePort, externalIPs, LoadBalancer), one
 * code for XDP and for tc (ctx.h): parse, service lookup, source-range check, conntrack, Maglev
 * for new flows, DNAT with incremental checksums, and reverse NAT of replies and of ICMP errors
 * about tracked flows. The tc egress hook does only the reverse NAT. */
#ifndef SKIFF_BPF_LIB_NODEPORT_H
#define SKIFF_BPF_LIB_NODEPORT_H

#include "conntrack.h"
#include "csum.h"
#include "ctx.h"
#include "lb.h"

#define SKIFF_ETH_P_8021Q 0x8100
#define SKIFF_ETH_P_8021AD 0x88A8
#define SKIFF_IP_MF 0x2000
#define SKIFF_IP_OFFSET 0x1FFF
#define SKIFF_NEXTHDR_FRAGMENT 44

/* Verdict of the decision step: translate, leave alone, or a negative drop code. */
#define SKIFF_ACT_PASS 0
#define SKIFF_ACT_NAT 1
/* SKIFF_LB_DSR: send the packet unchanged to the remote backend `nat` names, in an IPIP header. */
#define SKIFF_ACT_DSR 2

#define SKIFF_IPPROTO_IPIP 4
#define SKIFF_IP_DF 0x4000
/* uapi values of Linux 6.3 and 6.7, which Debian 12's headers may lack (by number, as the TCX
 * attach types in loader.h). */
#define SKIFF_ADJ_ROOM_ENCAP_L3_IPV4 (1ULL << 1)
#define SKIFF_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define SKIFF_FIB_LOOKUP_SKIP_NEIGH (1U << 2)
#define SKIFF_FIB_LOOKUP_SRC (1U << 4)

/* What to write into the packet: the new address and port, of the source or the destination. */
struct skiff_nat {
	__u8 addr[16];
	__be16 port;
	__u8 rewrite_src;
	__u8 pad;
};

struct skiff_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Decides what happens to a TCP/UDP packet whose tuple is `key` (dir ignored on entry). With
 * `reply_only` (tc egress) only replies of tracked flows are translated. */
static __always_inline int skiff_np_decide(struct skiff_ct_key *key, __u8 tcp_flags,
					   __u64 bytes, struct skiff_nat *nat, const bool reply_only)
{
	struct skiff_frontend_key fe = {
		.port = key->dport,
		.family = key->family,
		.proto = key->proto,
	};
	struct skiff_affinity_key akey;
	const __u32 origin = SKIFF_ORIGIN_EXTERNAL;
	struct skiff_service *svc;
	struct skiff_ct_slot *slot;
	struct skiff_ct_entry *ct;
	struct skiff_ct_pos pos = {};
	struct skiff_backend *be = NULL;
	struct skiff_svc_stats *svc_stats;
	struct skiff_be_stats *be_stats = NULL;
	__u64 now = skiff_now();
	__u32 backend_id = SKIFF_ID_NONE, first;
	__u64 hash = 0;
	bool new_flow = false;
	int code;

	skiff_memcpy(fe.addr, key->daddr, 16);
	key->dir = SKIFF_CT_FORWARD;
	first = skiff_ct_bucket(key);
	skiff_ct_prefetch(first);
	svc = reply_only ? NULL : skiff_lookup_service(&fe, true);
	if (!svc) {
		/* A reply from a backend to a client of a tracked flow? */
		key->dir = SKIFF_CT_REPLY;
		slot = skiff_ct_lookup(key);
		if (!slot)
			return SKIFF_ACT_PASS;
		ct = &slot->entry;
		if (!skiff_ct_alive(ct, key->proto, now))
			return SKIFF_ACT_PASS;
		skiff_ct_touch(ct, key->proto, tcp_flags, now, SKIFF_CT_F_SEEN_REPLY);
		skiff_memcpy(nat->addr, ct->frontend_addr, 16);
		nat->port = ct->frontend_port;
		nat->rewrite_src = 1;
		skiff_count_forward(ct->svc_id, ct->backend_id, bytes, false);
		skiff_count_global(SKIFF_GLOBAL_REPLY_TRANSLATED);
		return SKIFF_ACT_NAT;
	}

	if (!skiff_source_allowed(svc, key->family, key->saddr))
		return skiff_count_drop(svc->svc_id, SKIFF_DROP_SOURCE_RANGE);
	svc_stats = skiff_prefetch_svc_stats(svc->svc_id);
	/* A TCP SYN is nearly always a new flow: start loading its ring entry now, while the
	 * conntrack bucket is still on its way, instead of after the lookup missed (two cold misses
	 * one after the other). Other packets are mostly established and do not touch the ring. */
	if (key->proto == IPPROTO_TCP &&
	    (tcp_flags & (SKIFF_TCP_SYN | SKIFF_TCP_ACK)) == SKIFF_TCP_SYN) {
		hash = skiff_flow_hash(key);
		skiff_maglev_prefetch(svc, origin, hash);
	}

	key->dir = SKIFF_CT_FORWARD;
	slot = skiff_ct_find_in(key, first, now, &pos, SKIFF_CT_NO_SLOT);
	ct = slot ? &slot->entry : NULL;
	if (ct && ct->svc_id == svc->svc_id && skiff_ct_alive(ct, key->proto, now) &&
	    !skiff_ct_reopened(ct, key->proto, tcp_flags)) {
		/* Established: keep the backend while it is listed (terminating ones drain); UDP
		 * leaves a backend that stopped serving (dataplane::establishedFlow). */
		be_stats = skiff_prefetch_be_stats(ct->backend_id);
		be = skiff_listed_backend(ct->backend_id, svc->svc_id, key->family);
		if (be && key->proto == IPPROTO_UDP &&
		    !(be->flags & (SKIFF_BE_F_READY | SKIFF_BE_F_SERVING)))
			be = NULL;
		if (be) {
			backend_id = ct->backend_id;
			skiff_ct_touch(ct, key->proto, tcp_flags, now, 0);
		} else {
			skiff_count_global(SKIFF_GLOBAL_CT_RESELECTED);
		}
	}

	if (!be) {
		code = skiff_no_backend_code(svc, origin);
		if (code)
			return skiff_count_drop(svc->svc_id, code);
		/* Made here, not at the top: established packets do not need it. */
		skiff_memset(&akey, 0, sizeof(akey));
		akey.svc_id = svc->svc_id;
		akey.client_kind = SKIFF_AFF_CLIENT_ADDR;
		akey.family = key->family;
		skiff_memcpy(akey.client, key->saddr, 16);
		backend_id = skiff_affinity_get(svc, &akey, origin, now);
		if (backend_id == SKIFF_ID_NONE)
			backend_id = skiff_maglev_pick(svc, origin, hash ? hash : skiff_flow_hash(key));
		be_stats = skiff_prefetch_be_stats(backend_id);
		be = skiff_listed_backend(backend_id, svc->svc_id, key->family);
		if (!be)
			return skiff_count_drop(svc->svc_id, SKIFF_DROP_NO_BACKEND);
		if (skiff_ct_create(key, slot, &pos, be, backend_id, svc->svc_id, now))
			skiff_count_global(SKIFF_GLOBAL_CT_INSERT_FAILED);
		skiff_affinity_put(svc, &akey, backend_id, now);
		new_flow = true;
	}

	skiff_memcpy(nat->addr, be->addr, 16);
	nat->port = be->port;
	nat->rewrite_src = 0;
	skiff_count_forward_to(svc_stats, be_stats, bytes, new_flow);
	/* DSR: a backend on another node gets the client's packet as it is (the node-local logic,
	 * and so every local backend, stays with DNAT). */
	if (skiff_cfg_lb_mode == SKIFF_LB_DSR && key->family == SKIFF_AF_INET &&
	    !(be->flags & SKIFF_BE_F_LOCAL))
		return SKIFF_ACT_DSR;
	return SKIFF_ACT_NAT;
}

/* Rewrites the L4 port and fixes the L4 checksum for a change of `addr_diff` in the pseudo header
 * plus the port; the last step of a translation (for tc the checksum helper invalidates the
 * packet pointers). */
static __always_inline int skiff_nat_l4(void *ctx, const int hook, __u32 l4_off, __u8 proto,
					__u8 family, __u64 addr_diff, const struct skiff_nat *nat)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	__u8 *l4 = data + l4_off;
	__u8 *portp = l4 + (nat->rewrite_src ? 0 : 2);
	__u32 flags = family == SKIFF_AF_INET6 ? SKIFF_CSUM_V6 : 0;
	__u32 check_off;
	__u64 port_diff;

	if (proto == IPPROTO_TCP) {
		if ((void *)(l4 + sizeof(struct tcphdr)) > data_end)
			return SKIFF_DROP_MALFORMED;
		check_off = l4_off + __builtin_offsetof(struct tcphdr, check);
	} else {
		if ((void *)(l4 + sizeof(struct udphdr)) > data_end)
			return SKIFF_DROP_MALFORMED;
		check_off = l4_off + __builtin_offsetof(struct udphdr, check);
		/* IPv4 UDP without a checksum keeps none; IPv6 always has one. */
		flags |= SKIFF_CSUM_UDP | (family == SKIFF_AF_INET ? SKIFF_CSUM_ZERO : 0);
	}
	port_diff = skiff_csum_diff_words(portp, (const __u8 *)&nat->port, 1);
	skiff_memcpy(portp, &nat->port, 2);
	return skiff_ctx_l4_csum(ctx, hook, check_off, addr_diff, port_diff, flags);
}

static __always_inline int skiff_nat4(void *ctx, const int hook, __u32 l3_off, __u32 l4_off,
				      const struct skiff_nat *nat)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct iphdr *iph = data + l3_off;
	__u8 *addrp;
	__u64 diff;

	if ((void *)(iph + 1) > data_end)
		return SKIFF_DROP_MALFORMED;
	addrp = nat->rewrite_src ? (__u8 *)&iph->saddr : (__u8 *)&iph->daddr;
	diff = skiff_csum_diff_words(addrp, nat->addr, 2);
	iph->check = skiff_csum_apply(iph->check, diff);
	skiff_memcpy(addrp, nat->addr, 4);
	return skiff_nat_l4(ctx, hook, l4_off, iph->protocol, SKIFF_AF_INET, diff, nat);
}

static __always_inline int skiff_nat6(void *ctx, const int hook, __u32 l3_off, __u32 l4_off,
				      const struct skiff_nat *nat)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct ipv6hdr *ip6h = data + l3_off;
	__u8 *addrp;
	__u64 diff;

	if ((void *)(ip6h + 1) > data_end)
		return SKIFF_DROP_MALFORMED;
	addrp = nat->rewrite_src ? (__u8 *)&ip6h->saddr : (__u8 *)&ip6h->daddr;
	diff = skiff_csum_diff_words(addrp, nat->addr, 8);
	skiff_memcpy(addrp, nat->addr, 16);
	return skiff_nat_l4(ctx, hook, l4_off, ip6h->nexthdr, SKIFF_AF_INET6, diff, nat);
}

/* Sends a translated packet on: back to the kernel (which routes it), back out the interface,
 * or straight to the egress interface the kernel's FIB names (untagged frames only; anything
 * the FIB cannot answer at once, such as an unresolved neighbour, goes to the kernel). */
static __always_inline int skiff_np_forward(void *ctx, const int hook, __u32 l3_off, __u8 family)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth = data;
	long rc;

	/* tc egress: the packet is on its way out already. */
	if (skiff_cfg_fwd_mode == SKIFF_FWD_PASS || hook == SKIFF_HOOK_TC_EGRESS)
		return skiff_ctx_pass(hook);
	if ((void *)(eth + 1) > data_end)
		return skiff_ctx_drop(hook);
	if (skiff_cfg_fwd_mode == SKIFF_FWD_TX) {
		/* Two 32-bit and two 16-bit moves per address rather than bytes (the frame starts
		 * 2-aligned at worst; x86 and arm64 load unaligned words). */
		__u32 d4 = *(__u32 *)eth->h_dest, s4 = *(__u32 *)eth->h_source;
		__u16 d2 = *(__u16 *)(eth->h_dest + 4), s2 = *(__u16 *)(eth->h_source + 4);

		*(__u32 *)eth->h_dest = s4;
		*(__u16 *)(eth->h_dest + 4) = s2;
		*(__u32 *)eth->h_source = d4;
		*(__u16 *)(eth->h_source + 4) = d2;
		return skiff_ctx_tx(ctx, hook);
	}
	if (l3_off != sizeof(struct ethhdr))
		return skiff_ctx_pass(hook);
	fib.ifindex = skiff_ctx_ingress_ifindex(ctx, hook);
	if (family == SKIFF_AF_INET) {
		struct iphdr *iph = data + sizeof(struct ethhdr);

		if ((void *)(iph + 1) > data_end)
			return skiff_ctx_drop(hook);
		if (iph->ttl <= 1)
			return skiff_ctx_pass(hook); /* the kernel sends time exceeded */
		fib.family = SKIFF_SYS_AF_INET;
		fib.tos = iph->tos;
		fib.l4_protocol = iph->protocol;
		fib.tot_len = bpf_ntohs(iph->tot_len);
		fib.ipv4_src = iph->saddr;
		fib.ipv4_dst = iph->daddr;
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return skiff_ctx_pass(hook);
		data = skiff_ctx_data(ctx, hook);
		data_end = skiff_ctx_data_end(ctx, hook);
		iph = data + sizeof(struct ethhdr);
		if ((void *)(iph + 1) > data_end)
			return skiff_ctx_drop(hook);
		/* What the kernel's forwarding would do: TTL - 1, header checksum + 0x0100. */
		iph->ttl -= 1;
		iph->check = skiff_csum_apply(iph->check, (__u16)~bpf_htons(0x0100));
	} else {
		struct ipv6hdr *ip6h = data + sizeof(struct ethhdr);

		if ((void *)(ip6h + 1) > data_end)
			return skiff_ctx_drop(hook);
		if (ip6h->hop_limit <= 1)
			return skiff_ctx_pass(hook);
		fib.family = SKIFF_SYS_AF_INET6;
		fib.l4_protocol = ip6h->nexthdr;
		fib.tot_len = bpf_ntohs(ip6h->payload_len) + sizeof(*ip6h);
		skiff_memcpy(fib.ipv6_src, &ip6h->saddr, 16);
		skiff_memcpy(fib.ipv6_dst, &ip6h->daddr, 16);
		rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
		if (rc != BPF_FIB_LKUP_RET_SUCCESS)
			return skiff_ctx_pass(hook);
		data = skiff_ctx_data(ctx, hook);
		data_end = skiff_ctx_data_end(ctx, hook);
		ip6h = data + sizeof(struct ethhdr);
		if ((void *)(ip6h + 1) > data_end)
			return skiff_ctx_drop(hook);
		ip6h->hop_limit -= 1;
	}
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return skiff_ctx_drop(hook);
	skiff_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	skiff_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	skiff_count_global(SKIFF_GLOBAL_FIB_REDIRECTED);
	return bpf_redirect(fib.ifindex, 0);
}

static __always_inline int skiff_np_drop(const int hook, __u32 svc_id, int code)
{
	skiff_count_drop(svc_id, code);
	return skiff_ctx_drop(hook);
}

/* The verdict of a decision that rewrote nothing. */
static __always_inline int skiff_np_verdict(const int hook, int act)
{
	if (act == SKIFF_ACT_PASS)
		return skiff_ctx_pass(hook);
	if (act < 0)
		return skiff_ctx_drop(hook); /* counted by skiff_np_decide */
	return skiff_ctx_pass(hook);
}

/* An ICMP error about a tracked flow (destination unreachable, time exceeded, parameter
 * problem). Two cases:
 *  - about a packet client -> backend, sent toward the client (by the backend or a router on
 *    the way): the embedded header's destination becomes the frontend, and so does the outer
 *    source if it is the backend;
 *  - about a reply frontend -> client, sent toward the frontend: the embedded source becomes the
 *    backend, and so does the outer destination if it is the frontend.
 * The IPv4 header checksums and the ICMP checksum are updated; the embedded L4 checksum is left
 * as it is (it may be cut off, and nobody checks it). Anything else passes unchanged. */
static __always_inline int skiff_np_icmp4(void *ctx, const int hook, __u32 l3_off, __u32 l4_off)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct iphdr *outer = data + l3_off;
	struct skiff_icmphdr *icmp = data + l4_off;
	struct iphdr *inner = (void *)(icmp + 1);
	__u8 *ports = (__u8 *)(inner + 1);
	struct skiff_ct_key key __attribute__((aligned(8))) = { .family = SKIFF_AF_INET };
	struct skiff_ct_slot *slot;
	struct skiff_ct_entry *ct;
	struct skiff_nat nat = {};
	__u8 *in_addr, *in_port, *out_addr;
	__u64 in_diff, icmp_diff;
	__u16 old_check;

	if ((void *)(outer + 1) > data_end || (void *)(icmp + 1) > data_end)
		return skiff_ctx_pass(hook);
	if (icmp->type != SKIFF_ICMP_DEST_UNREACH && icmp->type != SKIFF_ICMP_TIME_EXCEEDED &&
	    icmp->type != SKIFF_ICMP_PARAMETERPROB)
		return skiff_ctx_pass(hook);
	if ((void *)(inner + 1) > data_end || (void *)(ports + 4) > data_end)
		return skiff_ctx_pass(hook);
	if (inner->ihl != 5 || (inner->protocol != IPPROTO_TCP && inner->protocol != IPPROTO_UDP))
		return skiff_ctx_pass(hook);

	/* Case 1: the reply entry of the flow is the embedded packet turned around. */
	key.proto = inner->protocol;
	skiff_memcpy(key.saddr, &inner->daddr, 4);
	skiff_memcpy(key.daddr, &inner->saddr, 4);
	skiff_memcpy(&key.sport, ports + 2, 2);
	skiff_memcpy(&key.dport, ports, 2);
	key.dir = SKIFF_CT_REPLY;
	slot = skiff_ct_lookup(&key);
	ct = slot ? &slot->entry : NULL;
	if (ct) {
		skiff_memcpy(nat.addr, ct->frontend_addr, 16);
		nat.port = ct->frontend_port;
		in_addr = (__u8 *)&inner->daddr;
		in_port = ports + 2;
		out_addr = (__u8 *)&outer->saddr;
	} else {
		/* Case 2: the forward entry is the embedded packet turned around. */
		key.dir = SKIFF_CT_FORWARD;
		slot = skiff_ct_lookup(&key);
		if (!slot)
			return skiff_ctx_pass(hook);
		ct = &slot->entry;
		struct skiff_backend *be = skiff_listed_backend(ct->backend_id, ct->svc_id,
								 SKIFF_AF_INET);
		if (!be)
			return skiff_ctx_pass(hook);
		skiff_memcpy(nat.addr, be->addr, 16);
		nat.port = be->port;
		in_addr = (__u8 *)&inner->saddr;
		in_port = ports;
		out_addr = (__u8 *)&outer->daddr;
	}

	/* Outer address first: it is compared with the embedded one before that changes. */
	if (skiff_addr_eq4(out_addr, in_addr)) {
		outer->check = skiff_csum_apply(outer->check,
						skiff_csum_diff_words(out_addr, nat.addr, 2));
		skiff_memcpy(out_addr, nat.addr, 4);
	}
	in_diff = skiff_csum_diff_words(in_addr, nat.addr, 2);
	old_check = inner->check;
	inner->check = skiff_csum_apply(inner->check, in_diff);
	icmp_diff = in_diff + skiff_csum_diff_words(in_port, (const __u8 *)&nat.port, 1) +
		    skiff_csum_diff_words((const __u8 *)&old_check, (const __u8 *)&inner->check, 1);
	icmp->checksum = skiff_csum_apply(icmp->checksum, icmp_diff);
	skiff_memcpy(in_addr, nat.addr, 4);
	skiff_memcpy(in_port, &nat.port, 2);
	skiff_count_global(SKIFF_GLOBAL_ICMP_TRANSLATED);
	return skiff_np_forward(ctx, hook, l3_off, SKIFF_AF_INET);
}

/* The ICMPv6 counterpart of skiff_np_icmp4 (destination unreachable, packet too big, time
 * exceeded, parameter problem). IPv6 has no header checksum; the ICMPv6 checksum covers the
 * pseudo header, so a rewritten outer address is part of its update. */
static __always_inline int skiff_np_icmp6(void *ctx, const int hook, __u32 l3_off, __u32 l4_off)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct ipv6hdr *outer = data + l3_off;
	struct skiff_icmphdr *icmp = data + l4_off;
	struct ipv6hdr *inner = (void *)(icmp + 1);
	__u8 *ports = (__u8 *)(inner + 1);
	struct skiff_ct_key key __attribute__((aligned(8))) = { .family = SKIFF_AF_INET6 };
	struct skiff_ct_slot *slot;
	struct skiff_ct_entry *ct;
	struct skiff_nat nat = {};
	__u8 *in_addr, *in_port, *out_addr;
	__u64 diff = 0;

	if ((void *)(outer + 1) > data_end || (void *)(icmp + 1) > data_end)
		return skiff_ctx_pass(hook);
	if (icmp->type < SKIFF_ICMPV6_DEST_UNREACH || icmp->type > SKIFF_ICMPV6_PARAMPROB)
		return skiff_ctx_pass(hook);
	if ((void *)(inner + 1) > data_end || (void *)(ports + 4) > data_end)
		return skiff_ctx_pass(hook);
	if (inner->nexthdr != IPPROTO_TCP && inner->nexthdr != IPPROTO_UDP)
		return skiff_ctx_pass(hook);

	key.proto = inner->nexthdr;
	skiff_memcpy(key.saddr, &inner->daddr, 16);
	skiff_memcpy(key.daddr, &inner->saddr, 16);
	skiff_memcpy(&key.sport, ports + 2, 2);
	skiff_memcpy(&key.dport, ports, 2);
	key.dir = SKIFF_CT_REPLY;
	slot = skiff_ct_lookup(&key);
	ct = slot ? &slot->entry : NULL;
	if (ct) {
		skiff_memcpy(nat.addr, ct->frontend_addr, 16);
		nat.port = ct->frontend_port;
		in_addr = (__u8 *)&inner->daddr;
		in_port = ports + 2;
		out_addr = (__u8 *)&outer->saddr;
	} else {
		key.dir = SKIFF_CT_FORWARD;
		slot = skiff_ct_lookup(&key);
		if (!slot)
			return skiff_ctx_pass(hook);
		ct = &slot->entry;
		struct skiff_backend *be = skiff_listed_backend(ct->backend_id, ct->svc_id,
								 SKIFF_AF_INET6);
		if (!be)
			return skiff_ctx_pass(hook);
		skiff_memcpy(nat.addr, be->addr, 16);
		nat.port = be->port;
		in_addr = (__u8 *)&inner->saddr;
		in_port = ports;
		out_addr = (__u8 *)&outer->daddr;
	}

	if (skiff_addr_eq(out_addr, in_addr)) {
		diff += skiff_csum_diff_words(out_addr, nat.addr, 8);
		skiff_memcpy(out_addr, nat.addr, 16);
	}
	diff += skiff_csum_diff_words(in_addr, nat.addr, 8) +
		skiff_csum_diff_words(in_port, (const __u8 *)&nat.port, 1);
	icmp->checksum = skiff_csum_apply(icmp->checksum, diff);
	skiff_memcpy(in_addr, nat.addr, 16);
	skiff_memcpy(in_port, &nat.port, 2);
	skiff_count_global(SKIFF_GLOBAL_ICMP_TRANSLATED);
	return skiff_np_forward(ctx, hook, l3_off, SKIFF_AF_INET6);
}

/* Turns the untagged IPv4 frame into an ICMP port unreachable from its destination to its
 * source, quoting its IP header and 8 bytes, and sends it back out (XDP_TX; tc: a redirect to
 * the interface's egress). */
static __always_inline int skiff_np_reject4(void *ctx, const int hook, __u32 l3_off)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct ethhdr *eth = data;
	struct iphdr *iph = data + l3_off;
	struct skiff_icmphdr *icmp;
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN];
	__be32 saddr, daddr;
	__be16 id;
	__u32 quote, len, i;
	__u64 sum = 0;
	__u16 w;

	if (l3_off != sizeof(*eth) || (void *)(iph + 1) > data_end)
		return skiff_ctx_drop(hook);
	quote = (__u32)iph->ihl * 4 + 8;
	len = skiff_ctx_len(ctx, hook);
	if (quote > 68 || len < sizeof(*eth) + quote)
		return skiff_ctx_drop(hook);
	skiff_memcpy(smac, eth->h_source, ETH_ALEN);
	skiff_memcpy(dmac, eth->h_dest, ETH_ALEN);
	saddr = iph->saddr;
	daddr = iph->daddr;
	id = iph->id;
	if (skiff_ctx_reframe(ctx, hook, len, sizeof(*eth) + quote,
			      sizeof(struct iphdr) + sizeof(*icmp)))
		return skiff_ctx_drop(hook);
	data = skiff_ctx_data(ctx, hook);
	data_end = skiff_ctx_data_end(ctx, hook);
	eth = data;
	iph = (void *)(eth + 1);
	icmp = (void *)(iph + 1);
	if ((void *)(icmp + 1) > data_end)
		return skiff_ctx_drop(hook);
	skiff_memcpy(eth->h_dest, smac, ETH_ALEN);
	skiff_memcpy(eth->h_source, dmac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons((__u16)(sizeof(*iph) + sizeof(*icmp) + quote));
	iph->id = id;
	iph->frag_off = 0;
	iph->ttl = 64;
	iph->protocol = IPPROTO_ICMP;
	iph->check = 0;
	iph->saddr = daddr;
	iph->daddr = saddr;
	iph->check = ~skiff_csum_fold(skiff_csum_sum(iph, 10));
	icmp->type = SKIFF_ICMP_DEST_UNREACH;
	icmp->code = 3; /* port unreachable */
	icmp->checksum = 0;
	icmp->rest = 0;
	/* The ICMP checksum covers the header and the quoted bytes (an even count, at most 68). */
#pragma unroll
	for (i = 0; i < (8 + 68) / 2; i++) {
		__u8 *p = (__u8 *)icmp + 2 * i;

		if (2 * i >= 8 + quote || (void *)(p + 2) > data_end)
			break;
		skiff_memcpy(&w, p, 2);
		sum += w;
	}
	/* Fresh pointers: the loop's bounds checks must not narrow the one stored through. */
	data = skiff_ctx_data(ctx, hook);
	data_end = skiff_ctx_data_end(ctx, hook);
	icmp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	if ((void *)(icmp + 1) > data_end)
		return skiff_ctx_drop(hook);
	icmp->checksum = ~skiff_csum_fold(sum);
	return skiff_ctx_tx(ctx, hook);
}

/* DSR, entry node: puts an outer IPv4 header (protocol 4) in front of the untagged frame's IPv4
 * packet, from this node's address to the backend's, the backend's port in its identification
 * field, DF set; the inner packet is left as it is. Then forwards it as any translated packet
 * (PASS: the kernel routes the outer packet, which needs accept_local on the interface, as its
 * source is the node's; FIB: bpf_fib_lookup on the outer header and redirect; TX). */
static __always_inline int skiff_np_dsr_encap4(void *ctx, const int hook, __u32 svc_id,
					       const struct skiff_nat *nat)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	const __u32 l3_off = sizeof(struct ethhdr);
	struct iphdr *inner = data + l3_off;
	struct iphdr *outer;
	struct ethhdr *eth;
	__be32 src = skiff_cfg_dsr_src4, dst;
	__be16 tot_len;
	__u8 tos;

	if ((void *)(inner + 1) > data_end)
		return skiff_np_drop(hook, svc_id, SKIFF_DROP_MALFORMED);
	tos = inner->tos;
	tot_len = bpf_htons(bpf_ntohs(inner->tot_len) + sizeof(struct iphdr));
	skiff_memcpy(&dst, nat->addr, 4);
	if (!src) {
		/* The node's address on the route to the backend, as the kernel would pick it (a
		 * lookup as for forwarding from the ingress interface, as skiff_np_forward's). */
		struct bpf_fib_lookup fib = {
			.family = SKIFF_SYS_AF_INET,
			.tos = tos,
			.l4_protocol = SKIFF_IPPROTO_IPIP,
			.ipv4_dst = dst,
			.ifindex = skiff_ctx_ingress_ifindex(ctx, hook),
		};
		long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib),
					 SKIFF_FIB_LOOKUP_SKIP_NEIGH | SKIFF_FIB_LOOKUP_SRC);

		if (rc != BPF_FIB_LKUP_RET_SUCCESS || !fib.ipv4_src)
			return skiff_np_drop(hook, svc_id, SKIFF_DROP_TX_FAILED);
		src = fib.ipv4_src;
	}
	if (SKIFF_IS_TC(hook)) {
		/* Room after the MAC header; the skb's inner headers are set, so GSO segments the
		 * inner packet and gso_size shrinks by the outer header. */
		if (bpf_skb_adjust_room(ctx, sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
					SKIFF_ADJ_ROOM_ENCAP_L3_IPV4))
			return skiff_np_drop(hook, svc_id, SKIFF_DROP_TX_FAILED);
		data = skiff_ctx_data(ctx, hook);
		data_end = skiff_ctx_data_end(ctx, hook);
		if (data + l3_off + sizeof(struct iphdr) > data_end &&
		    bpf_skb_pull_data(ctx, l3_off + sizeof(struct iphdr)))
			return skiff_np_drop(hook, svc_id, SKIFF_DROP_TX_FAILED);
	} else {
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
			return skiff_np_drop(hook, svc_id, SKIFF_DROP_TX_FAILED);
		data = skiff_ctx_data(ctx, hook);
		data_end = skiff_ctx_data_end(ctx, hook);
		eth = data;
		if ((void *)(eth + 1) + sizeof(struct iphdr) > data_end)
			return skiff_ctx_drop(hook);
		/* The Ethernet header moves to the new front (the two do not overlap). */
		skiff_memcpy(eth, (__u8 *)data + sizeof(struct iphdr), sizeof(*eth));
	}
	data = skiff_ctx_data(ctx, hook);
	data_end = skiff_ctx_data_end(ctx, hook);
	outer = data + l3_off;
	if ((void *)(outer + 1) > data_end)
		return skiff_ctx_drop(hook);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = tos;
	outer->tot_len = tot_len;
	outer->id = nat->port;
	outer->frag_off = bpf_htons(SKIFF_IP_DF);
	outer->ttl = 64;
	outer->protocol = SKIFF_IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = src;
	outer->daddr = dst;
	outer->check = ~skiff_csum_fold(skiff_csum_sum(outer, 10));
	skiff_count_global(SKIFF_GLOBAL_DSR_ENCAP);
	/* A fresh context pointer: clang would otherwise keep &skb->data_end from above in a
	 * register or spill slot, which the verifier refuses to dereference. */
	asm volatile("" : "+r"(ctx));
	return skiff_np_forward(ctx, hook, l3_off, SKIFF_AF_INET);
}

/* DSR, backend node: an IPIP packet (outer header at l3_off, `hlen` bytes) whose inner packet is
 * addressed to a frontend of this node's tables: the outer destination is the backend, the
 * outer identification its port. Records (or refreshes) the reply entry backend -> client with
 * the frontend, which tc egress restores as the reply's source; takes the outer header off; DNATs
 * the inner packet to the backend; forwards it as any translated packet (PASS: the kernel
 * delivers it to the pod). Anything else passes unchanged (another tunnel's packet). */
static __always_inline int skiff_np_dsr_decap4(void *ctx, const int hook, __u32 l3_off,
					       __u32 hlen)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct iphdr *outer = data + l3_off;
	struct iphdr *inner = data + l3_off + sizeof(struct iphdr);
	struct skiff_ct_key key __attribute__((aligned(8))) = { .family = SKIFF_AF_INET };
	struct skiff_frontend_key fe = { .family = SKIFF_AF_INET };
	struct skiff_ct_pos pos = {};
	struct skiff_nat nat = {};
	struct skiff_service *svc;
	struct skiff_ct_slot *slot;
	struct ethhdr *eth;
	__u32 in_hlen, in_len, outer_len;
	__u8 tcp_flags = 0;
	__be16 sport, dport;
	__u64 now;
	bool new_flow = false;
	__u8 *l4;

	if (l3_off != sizeof(struct ethhdr) || hlen != sizeof(struct iphdr) ||
	    (void *)(inner + 1) > data_end)
		return skiff_ctx_pass(hook);
	outer_len = bpf_ntohs(outer->tot_len);
	in_hlen = (__u32)inner->ihl * 4;
	in_len = bpf_ntohs(inner->tot_len);
	if (inner->version != 4 || in_hlen < sizeof(*inner) || in_hlen > 60 || in_len < in_hlen ||
	    in_len + sizeof(*outer) > outer_len || outer->id == 0 ||
	    (inner->frag_off & bpf_htons(SKIFF_IP_MF | SKIFF_IP_OFFSET)))
		return skiff_ctx_pass(hook);
	l4 = (__u8 *)inner + in_hlen;
	if (inner->protocol == IPPROTO_TCP) {
		struct tcphdr *th = (void *)l4;

		if ((void *)(th + 1) > data_end)
			return skiff_ctx_pass(hook);
		tcp_flags = l4[13];
		sport = th->source;
		dport = th->dest;
	} else if (inner->protocol == IPPROTO_UDP) {
		struct udphdr *uh = (void *)l4;

		if ((void *)(uh + 1) > data_end)
			return skiff_ctx_pass(hook);
		sport = uh->source;
		dport = uh->dest;
	} else {
		return skiff_ctx_pass(hook);
	}
	skiff_memcpy(fe.addr, &inner->daddr, 4);
	fe.port = dport;
	fe.proto = inner->protocol;
	svc = skiff_lookup_service(&fe, true);
	if (!svc)
		return skiff_ctx_pass(hook);

	/* The reply entry: backend (outer destination, port from the identification) -> client. */
	skiff_memcpy(key.saddr, &outer->daddr, 4);
	skiff_memcpy(key.daddr, &inner->saddr, 4);
	key.sport = outer->id;
	key.dport = sport;
	key.proto = inner->protocol;
	key.dir = SKIFF_CT_REPLY;
	skiff_memcpy(nat.addr, key.saddr, 16);
	nat.port = key.sport;
	now = skiff_now();
	slot = skiff_ct_find(&key, now, &pos, SKIFF_CT_NO_SLOT);
	if (slot && slot->entry.svc_id == svc->svc_id && skiff_ct_alive(&slot->entry, key.proto, now) &&
	    skiff_addr_eq4(slot->entry.frontend_addr, fe.addr) &&
	    slot->entry.frontend_port == fe.port && !skiff_ct_reopened(&slot->entry, key.proto,
								      tcp_flags)) {
		skiff_ct_touch(&slot->entry, key.proto, tcp_flags, now, 0);
	} else {
		struct skiff_ct_entry e = {
			.svc_id = svc->svc_id,
			.backend_id = SKIFF_ID_NONE, /* this node's id of it is not known here */
			.created_ns = now,
			.last_seen_ns = now,
			.frontend_port = fe.port,
		};

		skiff_memcpy(e.frontend_addr, fe.addr, 16);
		if (!slot)
			slot = skiff_ct_claim(&pos);
		if (slot)
			skiff_ct_fill(slot, &key, &e);
		else
			skiff_count_global(SKIFF_GLOBAL_CT_INSERT_FAILED);
		new_flow = true;
	}
	skiff_count_forward(svc->svc_id, SKIFF_ID_NONE, skiff_ctx_len(ctx, hook) - sizeof(*outer),
			    new_flow);
	skiff_count_global(SKIFF_GLOBAL_DSR_DECAP);

	if (SKIFF_IS_TC(hook)) {
		if (bpf_skb_adjust_room(ctx, -(__s32)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC,
					SKIFF_ADJ_ROOM_DECAP_L3_IPV4) &&
		    bpf_skb_adjust_room(ctx, -(__s32)sizeof(struct iphdr), BPF_ADJ_ROOM_MAC, 0))
			return skiff_np_drop(hook, svc->svc_id, SKIFF_DROP_MALFORMED);
		skiff_ctx_pull(ctx, hook);
	} else {
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return skiff_ctx_drop(hook);
		/* The Ethernet header moves over the end of the outer header (no overlap). */
		skiff_memcpy((__u8 *)data + sizeof(struct iphdr), eth, sizeof(*eth));
		if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr)))
			return skiff_np_drop(hook, svc->svc_id, SKIFF_DROP_MALFORMED);
	}
	if (skiff_nat4(ctx, hook, l3_off, l3_off + in_hlen, &nat))
		return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
	return skiff_np_forward(ctx, hook, l3_off, SKIFF_AF_INET);
}

static __always_inline int skiff_np_ipv4(void *ctx, const int hook, __u32 l3_off)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct iphdr *iph = data + l3_off;
	struct skiff_ct_key key __attribute__((aligned(8))) = { .family = SKIFF_AF_INET };
	struct skiff_nat nat = {};
	__u32 hlen, tot_len, l4_off;
	__u8 tcp_flags = 0;
	void *l4;
	int act;

	if ((void *)(iph + 1) > data_end)
		return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
	hlen = (__u32)iph->ihl * 4;
	tot_len = bpf_ntohs(iph->tot_len);
	if (iph->version != 4 || hlen < sizeof(*iph) || tot_len < hlen ||
	    l3_off + tot_len > skiff_ctx_len(ctx, hook))
		return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
	if (iph->frag_off & bpf_htons(SKIFF_IP_MF | SKIFF_IP_OFFSET)) {
		/* No fragment tracking: the kernel reassembles. */
		skiff_count_global(SKIFF_GLOBAL_FRAGMENT_PASSED);
		return skiff_ctx_pass(hook);
	}
	l4_off = l3_off + hlen;
	l4 = data + l4_off;
	if (iph->protocol == IPPROTO_ICMP)
		return skiff_np_icmp4(ctx, hook, l3_off, l4_off);
	if (skiff_cfg_lb_mode == SKIFF_LB_DSR && iph->protocol == SKIFF_IPPROTO_IPIP &&
	    hook != SKIFF_HOOK_TC_EGRESS)
		return skiff_np_dsr_decap4(ctx, hook, l3_off, hlen);
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5 ||
		    (__u32)th->doff * 4 > tot_len - hlen)
			return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
		tcp_flags = ((__u8 *)th)[13];
		key.sport = th->source;
		key.dport = th->dest;
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end || bpf_ntohs(uh->len) < sizeof(*uh) ||
		    bpf_ntohs(uh->len) > tot_len - hlen)
			return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
		key.sport = uh->source;
		key.dport = uh->dest;
	} else {
		return skiff_ctx_pass(hook);
	}
	key.proto = iph->protocol;
	skiff_memcpy(key.saddr, &iph->saddr, 4);
	skiff_memcpy(key.daddr, &iph->daddr, 4);

	act = skiff_np_decide(&key, tcp_flags, skiff_ctx_len(ctx, hook), &nat,
			      hook == SKIFF_HOOK_TC_EGRESS);
	if (act == SKIFF_DROP_NO_BACKEND && skiff_cfg_reject)
		return skiff_np_reject4(ctx, hook, l3_off);
	if (act == SKIFF_ACT_DSR && l3_off == sizeof(struct ethhdr))
		return skiff_np_dsr_encap4(ctx, hook, SKIFF_ID_NONE, &nat);
	if (act != SKIFF_ACT_NAT && act != SKIFF_ACT_DSR)
		return skiff_np_verdict(hook, act);
	/* Helpers may not keep packet pointers across calls: skiff_nat4 reloads them. */
	if (skiff_nat4(ctx, hook, l3_off, l4_off, &nat))
		return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
	return skiff_np_forward(ctx, hook, l3_off, SKIFF_AF_INET);
}

/* The IPv6 counterpart of skiff_np_reject4: an ICMPv6 port unreachable quoting the IPv6
 * header and 8 bytes (extension headers are not followed, so that is the L4 header). */
#define SKIFF_REJECT6_QUOTE (sizeof(struct ipv6hdr) + 8)
static __always_inline int skiff_np_reject6(void *ctx, const int hook, __u32 l3_off)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6h = data + l3_off;
	struct skiff_icmphdr *icmp;
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN], saddr[16], daddr[16];
	__u32 len;
	__u64 sum;

	if (l3_off != sizeof(*eth) || (void *)(ip6h + 1) > data_end)
		return skiff_ctx_drop(hook);
	len = skiff_ctx_len(ctx, hook);
	if (len < sizeof(*eth) + SKIFF_REJECT6_QUOTE)
		return skiff_ctx_drop(hook);
	skiff_memcpy(smac, eth->h_source, ETH_ALEN);
	skiff_memcpy(dmac, eth->h_dest, ETH_ALEN);
	skiff_memcpy(saddr, &ip6h->saddr, 16);
	skiff_memcpy(daddr, &ip6h->daddr, 16);
	if (skiff_ctx_reframe(ctx, hook, len, sizeof(*eth) + SKIFF_REJECT6_QUOTE,
			      sizeof(struct ipv6hdr) + sizeof(*icmp)))
		return skiff_ctx_drop(hook);
	data = skiff_ctx_data(ctx, hook);
	data_end = skiff_ctx_data_end(ctx, hook);
	eth = data;
	ip6h = (void *)(eth + 1);
	icmp = (void *)(ip6h + 1);
	if ((void *)((__u8 *)(icmp + 1) + SKIFF_REJECT6_QUOTE) > data_end)
		return skiff_ctx_drop(hook);
	skiff_memcpy(eth->h_dest, smac, ETH_ALEN);
	skiff_memcpy(eth->h_source, dmac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	skiff_memset(ip6h, 0, 4);
	ip6h->version = 6;
	ip6h->payload_len = bpf_htons((__u16)(sizeof(*icmp) + SKIFF_REJECT6_QUOTE));
	ip6h->nexthdr = IPPROTO_ICMPV6;
	ip6h->hop_limit = 64;
	skiff_memcpy(&ip6h->saddr, daddr, 16);
	skiff_memcpy(&ip6h->daddr, saddr, 16);
	icmp->type = SKIFF_ICMPV6_DEST_UNREACH;
	icmp->code = 4; /* port unreachable */
	icmp->checksum = 0;
	icmp->rest = 0;
	/* Pseudo header (addresses, upper-layer length, next header), then the message. */
	sum = skiff_csum_sum(&ip6h->saddr, 16) +
	      bpf_htons((__u16)(sizeof(*icmp) + SKIFF_REJECT6_QUOTE)) + bpf_htons(IPPROTO_ICMPV6) +
	      skiff_csum_sum(icmp, (sizeof(*icmp) + SKIFF_REJECT6_QUOTE) / 2);
	icmp->checksum = ~skiff_csum_fold(sum);
	return skiff_ctx_tx(ctx, hook);
}

static __always_inline int skiff_np_ipv6(void *ctx, const int hook, __u32 l3_off)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct ipv6hdr *ip6h = data + l3_off;
	struct skiff_ct_key key __attribute__((aligned(8))) = { .family = SKIFF_AF_INET6 };
	struct skiff_nat nat = {};
	__u32 l4_off = l3_off + sizeof(struct ipv6hdr);
	__u32 payload;
	__u8 tcp_flags = 0;
	void *l4;
	int act;

	if ((void *)(ip6h + 1) > data_end)
		return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
	payload = bpf_ntohs(ip6h->payload_len);
	if (ip6h->version != 6 || l4_off + payload > skiff_ctx_len(ctx, hook))
		return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
	l4 = data + l4_off;
	if (ip6h->nexthdr == SKIFF_NEXTHDR_FRAGMENT) {
		skiff_count_global(SKIFF_GLOBAL_FRAGMENT_PASSED);
		return skiff_ctx_pass(hook);
	}
	if (ip6h->nexthdr == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end || th->doff < 5 || (__u32)th->doff * 4 > payload)
			return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
		tcp_flags = ((__u8 *)th)[13];
		key.sport = th->source;
		key.dport = th->dest;
	} else if (ip6h->nexthdr == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end || bpf_ntohs(uh->len) < sizeof(*uh) ||
		    bpf_ntohs(uh->len) > payload)
			return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
		key.sport = uh->source;
		key.dport = uh->dest;
	} else if (ip6h->nexthdr == IPPROTO_ICMPV6) {
		return skiff_np_icmp6(ctx, hook, l3_off, l4_off);
	} else {
		/* Extension headers and other protocols: left to the kernel. */
		return skiff_ctx_pass(hook);
	}
	key.proto = ip6h->nexthdr;
	skiff_memcpy(key.saddr, &ip6h->saddr, 16);
	skiff_memcpy(key.daddr, &ip6h->daddr, 16);

	act = skiff_np_decide(&key, tcp_flags, skiff_ctx_len(ctx, hook), &nat,
			      hook == SKIFF_HOOK_TC_EGRESS);
	if (act == SKIFF_DROP_NO_BACKEND && skiff_cfg_reject)
		return skiff_np_reject6(ctx, hook, l3_off);
	if (act != SKIFF_ACT_NAT && act != SKIFF_ACT_DSR)
		return skiff_np_verdict(hook, act);
	if (skiff_nat6(ctx, hook, l3_off, l4_off, &nat))
		return skiff_np_drop(hook, SKIFF_ID_NONE, SKIFF_DROP_MALFORMED);
	return skiff_np_forward(ctx, hook, l3_off, SKIFF_AF_INET6);
}

static __always_inline int skiff_np_handle(void *ctx, const int hook)
{
	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	struct ethhdr *eth = data;
	__u32 off = sizeof(*eth);
	__be16 proto;
	int i;

	if ((void *)(eth + 1) > data_end)
		return skiff_ctx_pass(hook);
	proto = eth->h_proto;
#pragma unroll
	for (i = 0; i < 2; i++) {
		struct skiff_vlan_hdr *vh = data + off;

		if (proto != bpf_htons(SKIFF_ETH_P_8021Q) && proto != bpf_htons(SKIFF_ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return skiff_ctx_pass(hook);
		proto = vh->proto;
		off += sizeof(*vh);
	}
	if (proto == bpf_htons(ETH_P_IP))
		return skiff_np_ipv4(ctx, hook, off);
	if (proto == bpf_htons(ETH_P_IPV6))
		return skiff_np_ipv6(ctx, hook, off);
	return skiff_ctx_pass(hook);
}

#endif /* SKIFF_BPF_LIB_NODEPORT_H */
