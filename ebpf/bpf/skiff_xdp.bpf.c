// SPDX-License-Identifier: Apache-2.0
/* XDP entry: NodePort, externalIPs and LoadBalancer traffic arriving at the node. */
#include "lib/xdp_lb.h"

SEC("xdp")
int skiff_xdp_lb(struct xdp_md *ctx)
{
	return skiff_xdp_handle(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
