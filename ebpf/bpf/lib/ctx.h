/* SPDX-License-Identifier: Apache-2.0 */
/* The packet context of the node-port load balancer (nodeport.h), one code for two hooks: XDP
 * (struct xdp_md) and tc (struct __sk_buff, clsact ingress and egress, direct action). Every
 * function takes the hook as a constant argument; the entries pass a literal and everything is
 * inlined, so each program keeps only its own branch (the other one's helpers are never seen by
 * the verifier).
 *
 * What differs between the hooks:
 *  - verdicts: XDP_PASS/XDP_DROP/XDP_TX against TC_ACT_OK/TC_ACT_SHOT/bpf_redirect() out the
 *    interface the packet came in on;
 *  - length: an XDP frame is all in [data, data_end); an skb may hold only its headers in the
 *    linear part (GRO, paged data), so the headers are pulled in first and lengths are checked
 *    against skb->len;
 *  - the L4 checksum: XDP updates it by hand; an skb's checksum state (CHECKSUM_PARTIAL: the
 *    field holds only the pseudo-header sum; CHECKSUM_COMPLETE: skb->csum must follow) is the
 *    kernel's, so tc updates it through bpf_l4_csum_replace, the pseudo-header part and the rest
 *    apart. All other rewrites (addresses, ports, the IPv4 header checksum, ICMP) are direct
 *    stores in both: they leave the packet's one's complement sum as it was. */
#ifndef SKIFF_BPF_LIB_CTX_H
#define SKIFF_BPF_LIB_CTX_H

#include <linux/pkt_cls.h>

#include "csum.h"

#define SKIFF_HOOK_XDP 0
#define SKIFF_HOOK_TC_INGRESS 1
/* Replies only: reverse NAT of what leaves the device toward clients (a packet the node sends to
 * a frontend address is not load-balanced here: the socket LB does that). */
#define SKIFF_HOOK_TC_EGRESS 2

#define SKIFF_IS_TC(hook) ((hook) != SKIFF_HOOK_XDP)

/* How many bytes the parser reads at most: Ethernet, two VLAN tags, IPv6, ICMPv6 and the
 * embedded IPv6 header and ports (14 + 8 + 40 + 8 + 40 + 4 = 114), or an IPv4 header with
 * options and TCP with options (14 + 8 + 60 + 60 = 142). */
#define SKIFF_PULL_LEN 160

/* Flags of skiff_ctx_l4_csum. */
#define SKIFF_CSUM_UDP 0x1  /* a result of 0 is written as 0xffff */
#define SKIFF_CSUM_ZERO 0x2 /* a field of 0 (IPv4 UDP without checksum) stays 0 */
#define SKIFF_CSUM_V6 0x4

#ifndef BPF_F_IPV6
#define BPF_F_IPV6 (1ULL << 7) /* Linux 6.16: an IPv6 pseudo header is inside skb->csum */
#endif

/* A load of the skb's data or data_end field straight from the context register (as Cilium's
 * ctx_data): written as C, clang may keep `skb + offset` in a register or a spill slot across
 * the program and load through that later, which the verifier refuses ("dereference of modified
 * ctx ptr"). */
#define SKIFF_SKB_LOAD(ctx, field)                                                                \
	({                                                                                         \
		__u64 skiff_v_;                                                                    \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                                              \
			     : "=r"(skiff_v_)                                                      \
			     : "r"(ctx), "i"(__builtin_offsetof(struct __sk_buff, field)));        \
		(void *)(long)skiff_v_;                                                            \
	})

static __always_inline void *skiff_ctx_data(void *ctx, const int hook)
{
	if (SKIFF_IS_TC(hook))
		return SKIFF_SKB_LOAD(ctx, data);
	return (void *)(long)((struct xdp_md *)ctx)->data;
}

static __always_inline void *skiff_ctx_data_end(void *ctx, const int hook)
{
	if (SKIFF_IS_TC(hook))
		return SKIFF_SKB_LOAD(ctx, data_end);
	return (void *)(long)((struct xdp_md *)ctx)->data_end;
}

/* The length of the whole packet from the start of data (for an skb, paged parts included). */
static __always_inline __u32 skiff_ctx_len(void *ctx, const int hook)
{
	if (SKIFF_IS_TC(hook))
		return ((struct __sk_buff *)ctx)->len;
	return (__u32)(skiff_ctx_data_end(ctx, hook) - skiff_ctx_data(ctx, hook));
}

/* Makes the first SKIFF_PULL_LEN bytes (or the whole packet if shorter) linear and writable;
 * nothing for XDP. */
static __always_inline void skiff_ctx_pull(void *ctx, const int hook)
{
	__u32 len, want;

	if (!SKIFF_IS_TC(hook))
		return;
	len = ((struct __sk_buff *)ctx)->len;
	want = len < SKIFF_PULL_LEN ? len : SKIFF_PULL_LEN;
	if (skiff_ctx_data(ctx, hook) + want > skiff_ctx_data_end(ctx, hook))
		bpf_skb_pull_data(ctx, want);
}

static __always_inline int skiff_ctx_pass(const int hook)
{
	return SKIFF_IS_TC(hook) ? TC_ACT_OK : XDP_PASS;
}

static __always_inline int skiff_ctx_drop(const int hook)
{
	return SKIFF_IS_TC(hook) ? TC_ACT_SHOT : XDP_DROP;
}

/* Sends the (rewritten) frame back out the interface it came in on. */
static __always_inline int skiff_ctx_tx(void *ctx, const int hook)
{
	if (SKIFF_IS_TC(hook))
		return bpf_redirect(((struct __sk_buff *)ctx)->ifindex, 0);
	return XDP_TX;
}

static __always_inline __u32 skiff_ctx_ingress_ifindex(void *ctx, const int hook)
{
	if (SKIFF_IS_TC(hook))
		return ((struct __sk_buff *)ctx)->ingress_ifindex;
	return ((struct xdp_md *)ctx)->ingress_ifindex;
}

/* Reshapes a `len`-byte frame for a reply built in its place (a reject): cut to its first `keep`
 * bytes, then `grow` bytes more after the Ethernet header (XDP grows at the front instead, which
 * comes to the same once the new headers are written over the old Ethernet header). */
static __always_inline int skiff_ctx_reframe(void *ctx, const int hook, __u32 len, __u32 keep,
					     __u32 grow)
{
	if (SKIFF_IS_TC(hook)) {
		if (bpf_skb_change_tail(ctx, keep, 0))
			return -1;
		if (bpf_skb_adjust_room(ctx, grow, BPF_ADJ_ROOM_MAC, 0))
			return -1;
		if (bpf_skb_pull_data(ctx, keep + grow))
			return -1;
		/* Every checksum of the new frame is computed whole. */
		bpf_csum_level(ctx, BPF_CSUM_LEVEL_RESET);
		return 0;
	}
	if (bpf_xdp_adjust_tail(ctx, (int)keep - (int)len))
		return -1;
	return bpf_xdp_adjust_head(ctx, -(int)grow) ? -1 : 0;
}

static __always_inline __wsum skiff_csum_fold32(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return (__wsum)sum;
}

/* Updates the TCP/UDP checksum at `off` for a change of `pseudo` (sum of skiff_csum_diff_words
 * over the addresses of the pseudo header) and of `plain` (over bytes of the L4 header itself).
 * The last step of a rewrite: for tc it invalidates every packet pointer. */
static __always_inline int skiff_ctx_l4_csum(void *ctx, const int hook, __u32 off, __u64 pseudo,
					     __u64 plain, __u32 flags)
{
	if (SKIFF_IS_TC(hook)) {
		__u64 mm = 0, v6 = (flags & SKIFF_CSUM_V6) ? BPF_F_IPV6 : 0;
		long err;

		if (flags & SKIFF_CSUM_UDP)
			mm = BPF_F_MARK_MANGLED_0 | ((flags & SKIFF_CSUM_ZERO) ? 0 : BPF_F_MARK_ENFORCE);
		err = bpf_l4_csum_replace(ctx, off, 0, skiff_csum_fold32(pseudo),
					  BPF_F_PSEUDO_HDR | mm | v6);
		/* Before 6.16 the flag is refused; the update is then right but for
		 * CHECKSUM_COMPLETE IPv6 packets, whose skb->csum the kernel adjusts wrongly. */
		if (err == -22 && v6)
			err = bpf_l4_csum_replace(ctx, off, 0, skiff_csum_fold32(pseudo),
						  BPF_F_PSEUDO_HDR | mm);
		if (err)
			return SKIFF_DROP_MALFORMED;
		if (bpf_l4_csum_replace(ctx, off, 0, skiff_csum_fold32(plain), mm))
			return SKIFF_DROP_MALFORMED;
		return 0;
	}

	void *data = skiff_ctx_data(ctx, hook);
	void *data_end = skiff_ctx_data_end(ctx, hook);
	__u16 *check = data + off;
	__u16 c;

	if ((void *)(check + 1) > data_end)
		return SKIFF_DROP_MALFORMED;
	if ((flags & SKIFF_CSUM_ZERO) && *check == 0)
		return 0;
	c = skiff_csum_apply(*check, pseudo + plain);
	if ((flags & SKIFF_CSUM_UDP) && c == 0)
		c = 0xffff;
	*check = c;
	return 0;
}

#endif /* SKIFF_BPF_LIB_CTX_H */
