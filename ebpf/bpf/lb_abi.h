/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one header of map keys, map values and constants that the BPF programs of ebpf/bpf/ and the
 * C++ loader and map writer of ebpf/ share. C-compatible: fixed-width types only, explicit
 * padding (every pad is zero when written), no bitfields, no enums in structs. The C++ side checks
 * every size and offset with static_assert (ebpf/abi.h).
 *
 * Byte order: addresses are 16 bytes in network order (an IPv4 address in the first 4 bytes, the
 * other 12 zero: the layout of skiff::dataplane::IpAddress::bytes()); ports are in network order
 * (__be16, as in the packet); everything else is in host order.
 *
 * The tables, in the style of Cilium's lb4/lb6 maps and Katran's vip/reals/ch_rings:
 *
 *   skiff_services   HASH       frontend (addr, port, family, proto) -> service value
 *   skiff_backends   ARRAY      backend id -> backend (addr, port, owning service, flags)
 *   skiff_rings      ARRAY (mmapable) ring memory in blocks of 16 backend ids: every Maglev ring
 *                               is an extent of ring_size entries from the service's ring_start
 *   skiff_ct         ARRAY      conntrack of the XDP path: slots of (packet 5-tuple + direction,
 *                               conntrack entry) in buckets of SKIFF_CT_WAYS, an LRU per bucket
 *                               (see below); the entry keeps the frontend the client addressed,
 *                               which reverse NAT restores (a wildcard NodePort has no address)
 *   skiff_sock_revnat LRU_HASH  (socket cookie, backend addr, port) -> frontend (socket LB)
 *   skiff_affinity   LRU_HASH   (service id, client) -> backend id + last use (ClientIP affinity)
 *   skiff_src_ranges LPM_TRIE   (service id, family, prefix) -> allowed (loadBalancerSourceRanges)
 *   skiff_svc_stats  PERCPU_ARRAY service id -> packets, bytes, new flows, drops by reason
 *   skiff_be_stats   PERCPU_ARRAY backend id -> packets, bytes, new flows
 *   skiff_global     PERCPU_ARRAY counter index -> count (drops no service can be charged with,
 *                                 events such as conntrack insert failures)
 *   skiff_svc_names  HASH       service id -> the service's name ("namespace/name:port"); no
 *                               program reads it: a restarted loader finds its ids by name, and
 *                               `skiff lb` prints names
 *   skiff_meta       ARRAY      [0] = SKIFF_ABI_VERSION of the maps pinned beside it; no program
 *                               reads it: a loader of another version replaces the pinned maps
 *
 * Maglev rings: one flat ARRAY of backend ids (BPF_F_MMAPABLE: the C++ map writer maps it and
 * writes rings with memcpy, no syscall per ring and no map-in-map update, each of which waited for
 * an RCU grace period). Each ring is an extent [ring_start, ring_start + ring_size) handed out by
 * the writer's extent allocator; entries 0..SKIFF_RING_ALIGN-1 are never handed out, so
 * ring_start 0 means none. Ring sizes are primes up to 65537 (by default a step of
 * dataplane::maglevTableSizeFor(), 1021 for up to 10 backends), so extents are
 * variable-sized rather than fixed slots of the largest size. A ring that changes is written whole
 * into a free extent, then the frontends are pointed at it (one map update each: a packet sees the
 * old ring or the new one, never a mix), then the old extent is released; released extents are
 * reused only after a quarantine (the writer's), and a picked backend must still be listed in the
 * packet's service (skiff_listed_backend), so a reader that raced a reuse drops one packet at
 * worst. The array is preallocated (4 bytes per entry: the loader's ringEntries, by default one
 * default-size ring per service id).
 *
 * Rings exist per (service, family, scope), scope being dataplane::backendScope() (cluster or
 * node-local): each frontend points each origin (external = XDP, in-cluster = socket LB) at the
 * ring of its family and of the scope its kind and the traffic policies give that origin.
 *
 * Conntrack (skiff_ct): a set-associative table the program manages itself, because a kernel
 * LRU_HASH insert takes a bucket lock whose cache line is cold for a new flow, and a lock
 * operation on a cold line costs more than the rest of the packet (about 130 ns each here, and a
 * flow makes two). Slot i of the map (an ARRAY of struct skiff_ct_slot, max_entries slots) holds
 * a key and its entry; a key lives in bucket b, the slots [b * SKIFF_CT_WAYS, (b + 1) *
 * SKIFF_CT_WAYS), b a hash of the key's client side (the source of a forward key, the
 * destination of a reply key): both entries of a flow share a bucket, so a new flow touches one
 * bucket's memory, not two. A new entry takes a free or expired slot of its bucket, else the
 * least recently seen one (LRU per bucket). Slots are written with plain stores: two CPUs
 * inserting into one bucket at once may lose one entry (its flow is re-picked by Maglev, the
 * same backend while the ring is unchanged), and a reader that races a writer may see a mixed
 * slot, which the backend's service check rejects. family 0 marks a free slot. As a HASH of
 * slot index -> slot (LoadOptions::conntrackWithoutLru) a slot exists only once written, the
 * table holds at most max_entries slots and a full bucket refuses new entries (no eviction).
 * Times in entries are the monotonic clock at tick granularity (a bpf_ktime_get_ns() cached per
 * jiffy), so a lifetime check accepts a last_seen slightly ahead of now.
 *
 * Reverse NAT: the XDP path keeps the frontend in the conntrack entry (no frontend-indexed
 * reverse-NAT table: a wildcard NodePort has no address of its own, and the entry is looked up
 * anyway); the socket LB keys its reverse map by socket cookie and backend.
 */
#ifndef SKIFF_EBPF_LB_ABI_H
#define SKIFF_EBPF_LB_ABI_H

#ifdef __cplusplus
#include <cstdint>
typedef uint8_t skiff_u8;
typedef uint16_t skiff_u16;
typedef uint32_t skiff_u32;
typedef uint64_t skiff_u64;
typedef uint16_t skiff_be16;
#else
#include <linux/types.h>
typedef __u8 skiff_u8;
typedef __u16 skiff_u16;
typedef __u32 skiff_u32;
typedef __u64 skiff_u64;
typedef __be16 skiff_be16;
#endif

/* Capacities (max_entries). The loader may lower or raise them before load. */
#define SKIFF_MAX_FRONTENDS 65536
#define SKIFF_MAX_SERVICES 16384
#define SKIFF_MAX_BACKENDS 65536
#define SKIFF_MAX_RINGS (2 * 2 * SKIFF_MAX_SERVICES) /* per service: 2 families x 2 origins */
#define SKIFF_MAX_RING_SIZE 65537
/* Ring entries (backend ids) of skiff_rings as compiled (the loader sets the real size before
 * load); the map has SKIFF_RING_ENTRIES / SKIFF_RING_ALIGN blocks. */
#define SKIFF_RING_ENTRIES (SKIFF_MAX_SERVICES * 16384)
/* The ring memory's elements are blocks of this many backend ids (64 bytes, one cache line):
 * an ARRAY rounds every element up to 8 bytes, so single 4-byte entries would take 8 each and
 * not lie contiguous in the mapping. Entry e is block e / SKIFF_RING_ALIGN, slot
 * e % SKIFF_RING_ALIGN; extents start on block boundaries. */
#define SKIFF_RING_ALIGN 16

/* The layout version of the maps. A loader that finds pinned maps of another version (or none,
 * as before version 2) unpins them and starts with fresh maps (flows reset); its programs still
 * replace the old ones in the pinned links. 2: flat ring memory (skiff_rings ARRAY, ring_start).
 * 3: conntrack as slots of an ARRAY (skiff_ct_slot) instead of an LRU_HASH. */
#define SKIFF_ABI_VERSION 3
#define SKIFF_CT_SIZE 524288
#define SKIFF_SOCK_REVNAT_SIZE 262144
#define SKIFF_AFFINITY_SIZE 65536
#define SKIFF_SRC_RANGES_SIZE 16384

/* Id 0 of services, backends and rings is never used: a zero field means none. */
#define SKIFF_ID_NONE 0

/* Map names, as the BPF objects define them (and as they are pinned under SKIFF_PIN_DIR). */
#define SKIFF_MAP_SERVICES "skiff_services"
#define SKIFF_MAP_BACKENDS "skiff_backends"
#define SKIFF_MAP_RINGS "skiff_rings"
#define SKIFF_MAP_CT "skiff_ct"
#define SKIFF_MAP_SOCK_REVNAT "skiff_sock_revnat"
#define SKIFF_MAP_AFFINITY "skiff_affinity"
#define SKIFF_MAP_SRC_RANGES "skiff_src_ranges"
#define SKIFF_MAP_SVC_STATS "skiff_svc_stats"
#define SKIFF_MAP_BE_STATS "skiff_be_stats"
#define SKIFF_MAP_GLOBAL "skiff_global"
#define SKIFF_MAP_SVC_NAMES "skiff_svc_names"
#define SKIFF_MAP_META "skiff_meta"

/* Program names (the C function names of the entry points). */
#define SKIFF_PROG_XDP "skiff_xdp_lb"
/* The node-port LB at tc (same object as XDP); short enough for BPF_OBJ_NAME_LEN (16), so that
 * the kernel reports them whole (skiff lb status). */
#define SKIFF_PROG_TC_INGRESS "skiff_tc_lb_in"
#define SKIFF_PROG_TC_EGRESS "skiff_tc_lb_out"
#define SKIFF_PROG_CONNECT4 "skiff_connect4"
#define SKIFF_PROG_CONNECT6 "skiff_connect6"
#define SKIFF_PROG_SENDMSG4 "skiff_sendmsg4"
#define SKIFF_PROG_SENDMSG6 "skiff_sendmsg6"
#define SKIFF_PROG_RECVMSG4 "skiff_recvmsg4"
#define SKIFF_PROG_RECVMSG6 "skiff_recvmsg6"
#define SKIFF_PROG_GETPEERNAME4 "skiff_getpeername4"
#define SKIFF_PROG_GETPEERNAME6 "skiff_getpeername6"

/* Where the loader pins the maps. */
#define SKIFF_PIN_DIR "/sys/fs/bpf/skiff"

/* Address families as stored in keys (skiff::dataplane::AddressFamily). */
#define SKIFF_AF_INET 4
#define SKIFF_AF_INET6 6

/* Where a new flow comes from (skiff::dataplane::TrafficOrigin): index into the per-origin
 * fields of struct skiff_service. */
#define SKIFF_ORIGIN_EXTERNAL 0   /* XDP on the node's interface */
#define SKIFF_ORIGIN_IN_CLUSTER 1 /* socket LB: pods and the node itself */
#define SKIFF_ORIGIN_COUNT 2

/* Frontend kinds (skiff::dataplane::FrontendKind). */
#define SKIFF_KIND_CLUSTER_IP 0
#define SKIFF_KIND_NODE_PORT 1
#define SKIFF_KIND_EXTERNAL_IP 2
#define SKIFF_KIND_LOAD_BALANCER 3

/* What new flows of one origin may use (skiff::dataplane::Selection). */
#define SKIFF_SEL_READY 0
#define SKIFF_SEL_SERVING_TERMINATING 1
#define SKIFF_SEL_NO_BACKENDS 2
#define SKIFF_SEL_NO_LOCAL_BACKENDS 3

/* skiff_service.flags */
#define SKIFF_SVC_F_AFFINITY (1u << 0)     /* sessionAffinity: ClientIP */
#define SKIFF_SVC_F_SRC_RANGES (1u << 1)   /* check skiff_src_ranges (LoadBalancer with ranges) */
/* New flows of that origin keep to node-local backends (dataplane::backendScope gave
 * kNodeLocal: externalTrafficPolicy or internalTrafficPolicy Local, by frontend kind). */
#define SKIFF_SVC_F_LOCAL_EXTERNAL (1u << 2)
#define SKIFF_SVC_F_LOCAL_IN_CLUSTER (1u << 3)
#define SKIFF_SVC_F_WILDCARD (1u << 4)     /* NodePort on every node address (addr all zero) */

/* skiff_backend.flags: the EndpointSlice conditions. A backend id whose entry has family 0 is not
 * listed in any service (removed): flows to it are reselected. */
#define SKIFF_BE_F_READY (1u << 0)
#define SKIFF_BE_F_SERVING (1u << 1)
#define SKIFF_BE_F_TERMINATING (1u << 2)
#define SKIFF_BE_F_LOCAL (1u << 3)
/* In eligibleBackends() of its family for that scope: new flows (and affinity) may go to it.
 * Maglev rings name only eligible backends; the bits let affinity check the same. */
#define SKIFF_BE_F_ELIGIBLE_CLUSTER (1u << 4)
#define SKIFF_BE_F_ELIGIBLE_LOCAL (1u << 5)

/* Frontend key: what a packet's destination is matched on. 20 bytes. */
struct skiff_frontend_key {
	skiff_u8 addr[16];  /* network order; all zero for a wildcard NodePort */
	skiff_be16 port;    /* network order */
	skiff_u8 family;    /* SKIFF_AF_INET or SKIFF_AF_INET6 */
	skiff_u8 proto;     /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP */
};

/* Service value, per frontend. 40 bytes. */
struct skiff_service {
	skiff_u32 svc_id;          /* stats index, affinity and source-range key, backend owner */
	skiff_u32 frontend_id;     /* its index in the service's frontends (tools; unused by BPF) */
	skiff_u32 ring_start[SKIFF_ORIGIN_COUNT]; /* first skiff_rings entry of the ring per origin */
	skiff_u32 ring_size[SKIFF_ORIGIN_COUNT];  /* entries of that ring (prime, <= 65537) */
	skiff_u16 backend_count[SKIFF_ORIGIN_COUNT]; /* eligible backends per origin; 0: no ring */
	skiff_u8 selection[SKIFF_ORIGIN_COUNT];   /* SKIFF_SEL_* per origin */
	skiff_u8 kind;             /* SKIFF_KIND_* */
	skiff_u8 pad0;
	skiff_u32 flags;           /* SKIFF_SVC_F_* */
	skiff_u32 affinity_timeout_s;
};

/* A block of the ring memory (skiff_rings): SKIFF_RING_ALIGN consecutive ring entries. 64 bytes. */
struct skiff_ring_block {
	skiff_u32 backend_id[SKIFF_RING_ALIGN];
};

/* Backend, by backend id. Each (service, backend key) has its own id. 28 bytes. */
struct skiff_backend {
	skiff_u8 addr[16];
	skiff_be16 port;
	skiff_u8 family;    /* 0: id not in use */
	skiff_u8 flags;     /* SKIFF_BE_F_* */
	skiff_u32 svc_id;   /* the service that lists it: a conntrack entry must name the same */
	skiff_u32 pad;
};

/* A frontend as reverse NAT restores it (socket LB). 20 bytes. */
struct skiff_revnat {
	skiff_u8 addr[16];
	skiff_be16 port;
	skiff_u8 family;
	skiff_u8 pad;
};

/* Conntrack (XDP path). Keyed by the tuple as the packet carries it: the forward entry by
 * (client -> frontend), the reply entry by (backend -> client). 40 bytes. */
#define SKIFF_CT_FORWARD 0
#define SKIFF_CT_REPLY 1
struct skiff_ct_key {
	skiff_u8 saddr[16];
	skiff_u8 daddr[16];
	skiff_be16 sport;
	skiff_be16 dport;
	skiff_u8 proto;
	skiff_u8 family;
	skiff_u8 dir;       /* SKIFF_CT_FORWARD or SKIFF_CT_REPLY */
	skiff_u8 pad;
};

/* skiff_ct_entry.flags */
#define SKIFF_CT_F_SEEN_REPLY (1u << 0)
#define SKIFF_CT_F_CLOSING (1u << 1) /* TCP FIN or RST seen: shorter lifetime */

/* 56 bytes. */
struct skiff_ct_entry {
	skiff_u64 last_seen_ns; /* monotonic ns (tick granularity) */
	skiff_u32 flags;       /* SKIFF_CT_F_* */
	skiff_u32 backend_id;
	skiff_u32 svc_id;
	skiff_u32 pad;
	skiff_u64 created_ns;
	skiff_u8 frontend_addr[16]; /* what the client addressed: replies come from here */
	skiff_be16 frontend_port;
	skiff_u16 pad1;
	skiff_u32 pad2;
};

/* A slot of skiff_ct: the key (family 0: free) and its entry. 128 bytes, so that a bucket is
 * 512 bytes within one page and what a lookup reads of a slot (key, last_seen, flags, backend
 * and service ids) is its first cache line. */
#define SKIFF_CT_WAYS 4
struct skiff_ct_slot {
	struct skiff_ct_key key;
	struct skiff_ct_entry entry;
	skiff_u8 pad[32];
};

/* Socket LB reverse NAT: a connect()/sendmsg() to a frontend recorded the backend it chose for
 * this socket; recvmsg()/getpeername() map the backend back to the frontend. 32 bytes. */
struct skiff_sock_revnat_key {
	skiff_u64 cookie;   /* bpf_get_socket_cookie() */
	skiff_u8 addr[16];  /* backend */
	skiff_be16 port;
	skiff_u8 family;
	skiff_u8 pad[5];
};

/* The value is the frontend: struct skiff_revnat. */

/* ClientIP affinity. The client is the source address (XDP) or the network namespace cookie
 * (socket LB, which does not know the source address at connect time). 24 bytes. */
#define SKIFF_AFF_CLIENT_ADDR 0
#define SKIFF_AFF_CLIENT_NETNS 1
struct skiff_affinity_key {
	skiff_u32 svc_id;
	skiff_u8 client_kind;  /* SKIFF_AFF_CLIENT_* */
	skiff_u8 family;       /* of the frontend */
	skiff_u8 pad[2];
	skiff_u8 client[16];   /* address, or the netns cookie in the first 8 bytes (host order) */
};

/* 16 bytes. */
struct skiff_affinity_entry {
	skiff_u32 backend_id;
	skiff_u32 pad;
	skiff_u64 last_used_ns;
};

/* loadBalancerSourceRanges, one LPM entry per (service, range). prefixlen counts the bits after
 * itself: 32 (svc_id) + 32 (family and pad) + the range's length. 28 bytes. */
#define SKIFF_SRC_RANGE_PREFIX_BASE 64
struct skiff_src_range_key {
	skiff_u32 prefixlen;
	skiff_u32 svc_id;   /* host order; fully matched, so byte order does not matter */
	skiff_u8 family;
	skiff_u8 pad[3];
	skiff_u8 addr[16];
};
/* The value is a skiff_u8: 1. */

/* Drop reasons: negative codes as Cilium's DROP_*, counter index -code - 1, in the order of
 * skiff::dataplane::DropReason. */
#define SKIFF_DROP_NO_BACKEND (-1)
#define SKIFF_DROP_NO_LOCAL_BACKEND (-2)
#define SKIFF_DROP_SOURCE_RANGE (-3)
#define SKIFF_DROP_CT_FULL (-4)
#define SKIFF_DROP_MALFORMED (-5)
#define SKIFF_DROP_TX_FAILED (-6)
#define SKIFF_DROP_REASON_COUNT 6
#define SKIFF_DROP_INDEX(code) ((unsigned int)(-(code)) - 1u)

/* Per-CPU counters by service id. 80 bytes. */
struct skiff_svc_stats {
	skiff_u64 packets;
	skiff_u64 bytes;
	skiff_u64 new_flows;
	skiff_u64 drops[SKIFF_DROP_REASON_COUNT];
	skiff_u64 pad;
};

/* Per-CPU counters by backend id. 32 bytes. */
struct skiff_be_stats {
	skiff_u64 packets;
	skiff_u64 bytes;
	skiff_u64 new_flows;
	skiff_u64 pad;
};

/* The name of a service id (skiff_svc_names): NUL-terminated, longer names are cut (a Kubernetes
 * "namespace/name:port" is at most 63 + 1 + 63 + 1 + 15 bytes). 160 bytes. */
#define SKIFF_SVC_NAME_LEN 160
struct skiff_svc_name {
	char name[SKIFF_SVC_NAME_LEN];
};

/* skiff_global indices: 0..SKIFF_DROP_REASON_COUNT-1 are drops no service can be charged with;
 * then events. */
#define SKIFF_GLOBAL_CT_INSERT_FAILED (SKIFF_DROP_REASON_COUNT + 0) /* forwarded by Maglev alone */
#define SKIFF_GLOBAL_FRAGMENT_PASSED (SKIFF_DROP_REASON_COUNT + 1)
#define SKIFF_GLOBAL_ICMP_TRANSLATED (SKIFF_DROP_REASON_COUNT + 2)
#define SKIFF_GLOBAL_REPLY_TRANSLATED (SKIFF_DROP_REASON_COUNT + 3)
#define SKIFF_GLOBAL_CT_RESELECTED (SKIFF_DROP_REASON_COUNT + 4)  /* stale entry: backend gone */
#define SKIFF_GLOBAL_SOCK_TRANSLATED (SKIFF_DROP_REASON_COUNT + 5)
#define SKIFF_GLOBAL_FIB_REDIRECTED (SKIFF_DROP_REASON_COUNT + 6) /* SKIFF_FWD_FIB */
/* SKIFF_LB_DSR: packets sent on to a remote backend in an IPIP header (entry node), and IPIP
 * packets of a service decapsulated for a local backend (backend node). */
#define SKIFF_GLOBAL_DSR_ENCAP (SKIFF_DROP_REASON_COUNT + 7)
#define SKIFF_GLOBAL_DSR_DECAP (SKIFF_DROP_REASON_COUNT + 8)
#define SKIFF_GLOBAL_COUNT 16

/* What XDP does with a packet it translated (the skiff_cfg_fwd_mode global). */
#define SKIFF_FWD_PASS 0 /* hand to the kernel, which routes to the backend (local pod or forward) */
#define SKIFF_FWD_TX 1   /* swap MACs and send back out the same interface (one-armed, tests) */
#define SKIFF_FWD_FIB 2  /* kernel FIB lookup, TTL - 1, bpf_redirect to the egress interface */

/* How a new flow reaches a backend on another node (the skiff_cfg_lb_mode global; Cilium's
 * loadBalancer.mode). Node-local backends are DNATed in both modes.
 *  SKIFF_LB_SNAT: DNAT to the backend; its replies come back through this node, which restores
 *    the frontend (the kernel's routing decides; Skiff does not rewrite the source).
 *  SKIFF_LB_DSR (IPv4, Cilium's dsrDispatch=ipip): the client's packet is left as it is and sent
 *    on inside an outer IPv4 header (protocol 4) from this node's address to the backend's
 *    address, whose identification field carries the backend's port (DF is set, so the field
 *    has no fragmentation role: RFC 6864 atomic datagrams). The backend's node takes the outer
 *    header off, DNATs the inner packet to the backend and records a reply entry (backend ->
 *    client: the frontend), so that its tc egress gives the reply the frontend as source and the
 *    reply goes straight to the client. IPv6 frontends and backends, and VLAN-tagged frames,
 *    stay with DNAT. */
#define SKIFF_LB_SNAT 0
#define SKIFF_LB_DSR 1

/* Flow hash: the Maglev position of a new flow is flow_hash % ring_size. Words of 64 bits are
 * folded with MurmurHash3's finalizer as skiff::dataplane::hashWords does:
 *   h = fmix64(seed ^ 0x9e3779b97f4a7c15)
 *   for each word w: h = fmix64(h ^ (w * 0x87c37b91114253d5)); h = h * 5 + 0x52dce729
 *   return fmix64(h ^ word_count)
 * XDP: 5 words: saddr[0..7], saddr[8..15], daddr[0..7], daddr[8..15] (each as a little-endian
 * 64-bit load of the network-order bytes), then sport | dport << 16 | proto << 32 | family << 40
 * (ports as the 16-bit network-order values loaded little-endian).
 * Socket LB: 2 words: the socket cookie, then dport | proto << 32 | family << 40. */
#define SKIFF_FLOW_HASH_SEED 0x736b696666666c77ULL /* "skiffflw" */

#endif /* SKIFF_EBPF_LB_ABI_H */
