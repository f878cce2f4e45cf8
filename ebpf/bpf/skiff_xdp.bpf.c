// SPDX-License-Identifier: Apache-2.0
/* The node-port load balancer's entries (lib/nodeport.h), in one object so that they share its
 * maps and configuration: XDP for traffic arriving at the node (NodePort, externalIPs and
 * LoadBalancer), and the same code at tc (clsact, direct action) where XDP cannot attach or is
 * not wanted: ingress translates as XDP does, egress reverse-translates the replies that leave
 * the device toward clients. */
#include "lib/nodeport.h"

SEC("xdp")
int skiff_xdp_lb(struct xdp_md *ctx)
{
	return skiff_np_handle(ctx, SKIFF_HOOK_XDP);
}

SEC("tc")
int skiff_tc_lb_in(struct __sk_buff *skb)
{
	skiff_ctx_pull(skb, SKIFF_HOOK_TC_INGRESS);
	return skiff_np_handle(skb, SKIFF_HOOK_TC_INGRESS);
}

SEC("tc")
int skiff_tc_lb_out(struct __sk_buff *skb)
{
	skiff_ctx_pull(skb, SKIFF_HOOK_TC_EGRESS);
	return skiff_np_handle(skb, SKIFF_HOOK_TC_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
