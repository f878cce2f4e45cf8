/* SPDX-License-Identifier: Apache-2.0 */
/* Includes and small helpers every Skiff BPF program uses. */
#ifndef SKIFF_BPF_LIB_COMMON_H
#define SKIFF_BPF_LIB_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "../lb_abi.h"

/* linux/icmp.h pulls in libc's socket headers, which a BPF build cannot use. */
#define SKIFF_ICMP_DEST_UNREACH 3
#define SKIFF_ICMP_TIME_EXCEEDED 11
#define SKIFF_ICMP_PARAMETERPROB 12
/* Address families of the socket API (bpf_fib_lookup), not of the ABI. */
#define SKIFF_SYS_AF_INET 2
#define SKIFF_SYS_AF_INET6 10
#define SKIFF_ICMPV6_DEST_UNREACH 1
#define SKIFF_ICMPV6_PARAMPROB 4 /* 1..4: the error types */

struct skiff_icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest;
};

#ifndef NSEC_PER_SEC
#define NSEC_PER_SEC 1000000000ULL
#endif

/* Copies that the compiler turns into plain loads and stores (no libc in BPF). */
#define skiff_memcpy __builtin_memcpy
#define skiff_memset __builtin_memset

/* Whether the 16-byte addresses are equal; IPv4 addresses compare all 16 bytes too, since the
 * tail is zero on both sides. */
static __always_inline bool skiff_addr_eq(const __u8 *a, const __u8 *b)
{
	__u64 a0, a1, b0, b1;

	skiff_memcpy(&a0, a, 8);
	skiff_memcpy(&a1, a + 8, 8);
	skiff_memcpy(&b0, b, 8);
	skiff_memcpy(&b1, b + 8, 8);
	return a0 == b0 && a1 == b1;
}

static __always_inline bool skiff_addr_eq4(const __u8 *a, const __u8 *b)
{
	__u32 x, y;

	skiff_memcpy(&x, a, 4);
	skiff_memcpy(&y, b, 4);
	return x == y;
}

#endif /* SKIFF_BPF_LIB_COMMON_H */
