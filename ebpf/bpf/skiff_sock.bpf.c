// SPDX-License-Identifier: Apache-2.0
/* Socket LB entries (cgroup sock_addr hooks) for pods and the node itself. */
#include "lib/sock_lb.h"

SEC("cgroup/connect4")
int skiff_connect4(struct bpf_sock_addr *ctx)
{
	return skiff_sock_forward(ctx, SKIFF_AF_INET);
}

SEC("cgroup/connect6")
int skiff_connect6(struct bpf_sock_addr *ctx)
{
	return skiff_sock_forward(ctx, SKIFF_AF_INET6);
}

SEC("cgroup/sendmsg4")
int skiff_sendmsg4(struct bpf_sock_addr *ctx)
{
	return skiff_sock_forward(ctx, SKIFF_AF_INET);
}

SEC("cgroup/sendmsg6")
int skiff_sendmsg6(struct bpf_sock_addr *ctx)
{
	return skiff_sock_forward(ctx, SKIFF_AF_INET6);
}

SEC("cgroup/recvmsg4")
int skiff_recvmsg4(struct bpf_sock_addr *ctx)
{
	return skiff_sock_reverse(ctx, SKIFF_AF_INET);
}

SEC("cgroup/recvmsg6")
int skiff_recvmsg6(struct bpf_sock_addr *ctx)
{
	return skiff_sock_reverse(ctx, SKIFF_AF_INET6);
}

SEC("cgroup/getpeername4")
int skiff_getpeername4(struct bpf_sock_addr *ctx)
{
	return skiff_sock_reverse(ctx, SKIFF_AF_INET);
}

SEC("cgroup/getpeername6")
int skiff_getpeername6(struct bpf_sock_addr *ctx)
{
	return skiff_sock_reverse(ctx, SKIFF_AF_INET6);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
