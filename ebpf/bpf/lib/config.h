/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration: read-only globals the loader sets through the skeleton before load
 * (skel->rodata->skiff_cfg_...), so the verifier sees constants and prunes what is off. */
#ifndef SKIFF_BPF_LIB_CONFIG_H
#define SKIFF_BPF_LIB_CONFIG_H

#include "common.h"

/* SKIFF_FWD_PASS or SKIFF_FWD_TX: what XDP does with a packet it translated. */
const volatile __u32 skiff_cfg_fwd_mode = SKIFF_FWD_PASS;
/* Conntrack lifetimes after the last packet (Cilium's defaults). */
const volatile __u64 skiff_cfg_ct_tcp_ns = 21600ULL * NSEC_PER_SEC;
const volatile __u64 skiff_cfg_ct_other_ns = 60ULL * NSEC_PER_SEC;
const volatile __u64 skiff_cfg_ct_closing_ns = 10ULL * NSEC_PER_SEC;
/* Answer a new flow to a service without backends with an ICMP(v6) port unreachable, as
 * kube-proxy's REJECT does (the drop is counted either way). */
const volatile __u32 skiff_cfg_reject = 1;
/* SKIFF_LB_SNAT or SKIFF_LB_DSR (lb_abi.h): how new flows reach backends on other nodes; with
 * DSR, IPIP packets of a service addressed to a local backend are decapsulated. */
const volatile __u32 skiff_cfg_lb_mode = SKIFF_LB_SNAT;
/* DSR: the outer source of encapsulated packets (IPv4, network order); 0: the source address the
 * kernel would use on the route to the backend (bpf_fib_lookup with BPF_FIB_LOOKUP_SRC, 6.7). */
const volatile __u32 skiff_cfg_dsr_src4 = 0;
/* Match NodePorts on the port alone (frontends with an all-zero address). */
const volatile __u32 skiff_cfg_nodeport_wildcard = 1;

#endif /* SKIFF_BPF_LIB_CONFIG_H */
