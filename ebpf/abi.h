#pragma once

// The C++ side of ebpf/bpf/lb_abi.h: the layout checks that keep the two sides in step, and the
// conversions from the LB model (dataplane/) to map keys and values.

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/address.h"
#include "dataplane/dataplane.h"
#include "dataplane/flow_hash.h"
#include "dataplane/selection.h"
#include "dataplane/service.h"
#include "ebpf/bpf/lb_abi.h"

namespace skiff::ebpf {

// Sizes and offsets as the BPF programs see them (clang -target bpf lays them out the same way
// as x86-64: natural alignment, no packing).
static_assert(sizeof(skiff_frontend_key) == 20);
static_assert(offsetof(skiff_frontend_key, port) == 16);
static_assert(offsetof(skiff_frontend_key, proto) == 19);
static_assert(sizeof(skiff_service) == 40);
static_assert(offsetof(skiff_service, ring_start) == 8);
static_assert(offsetof(skiff_service, ring_size) == 16);
static_assert(offsetof(skiff_service, backend_count) == 24);
static_assert(offsetof(skiff_service, selection) == 28);
static_assert(offsetof(skiff_service, kind) == 30);
static_assert(offsetof(skiff_service, flags) == 32);
static_assert(offsetof(skiff_service, affinity_timeout_s) == 36);
static_assert(sizeof(skiff_backend) == 28);
static_assert(offsetof(skiff_backend, svc_id) == 20);
static_assert(sizeof(skiff_revnat) == 20);
static_assert(sizeof(skiff_ct_key) == 40);
static_assert(offsetof(skiff_ct_key, sport) == 32);
static_assert(offsetof(skiff_ct_key, dir) == 38);
static_assert(sizeof(skiff_ct_entry) == 56);
static_assert(offsetof(skiff_ct_entry, frontend_addr) == 32);
static_assert(offsetof(skiff_ct_entry, created_ns) == 24);
static_assert(sizeof(skiff_ct_slot) == 128 && offsetof(skiff_ct_slot, entry) == 40);
static_assert(SKIFF_CT_WAYS > 0);
static_assert(sizeof(skiff_sock_revnat_key) == 32);
static_assert(offsetof(skiff_sock_revnat_key, addr) == 8);
static_assert(sizeof(skiff_affinity_key) == 24);
static_assert(offsetof(skiff_affinity_key, client) == 8);
static_assert(sizeof(skiff_affinity_entry) == 16);
static_assert(sizeof(skiff_src_range_key) == 28);
static_assert(offsetof(skiff_src_range_key, addr) == 12);
static_assert(sizeof(skiff_svc_stats) == 80);
static_assert(sizeof(skiff_be_stats) == 32);
static_assert(sizeof(skiff_svc_name) == SKIFF_SVC_NAME_LEN);
static_assert(SKIFF_DROP_REASON_COUNT == dataplane::kDropReasonCount);
static_assert(SKIFF_GLOBAL_DSR_DECAP < SKIFF_GLOBAL_COUNT);
static_assert(SKIFF_AF_INET == static_cast<int>(dataplane::AddressFamily::kIPv4));
static_assert(SKIFF_AF_INET6 == static_cast<int>(dataplane::AddressFamily::kIPv6));
static_assert(SKIFF_MAX_RING_SIZE == 65537);
static_assert(SKIFF_RING_ALIGN > 0 && (SKIFF_RING_ALIGN & (SKIFF_RING_ALIGN - 1)) == 0);
static_assert(SKIFF_ABI_VERSION == 3);
static_assert(sizeof(skiff_ring_block) == 4 * SKIFF_RING_ALIGN &&
              sizeof(skiff_ring_block) % 8 == 0);
static_assert(SKIFF_FLOW_HASH_SEED == dataplane::kFlowHashSeed);

// Host to network order for 16 bits (ports in keys).
constexpr uint16_t toNetwork16(uint16_t v) {
  return static_cast<uint16_t>((v >> 8) | (v << 8));
}
constexpr uint16_t fromNetwork16(uint16_t v) {
  return toNetwork16(v);
}

// The 16 key bytes of `address` (IPv4 in the first 4).
void copyAddress(const dataplane::IpAddress& address, uint8_t (&out)[16]);
// The address in key bytes of `family` (SKIFF_AF_*).
dataplane::IpAddress addressFromKey(const uint8_t (&bytes)[16], uint8_t family);

skiff_frontend_key frontendKey(const dataplane::FrontendKey& key);

uint8_t kindCode(dataplane::FrontendKind kind);
uint8_t selectionCode(dataplane::Selection selection);
// The drop reason of a negative SKIFF_DROP_* code (index into DropCounters).
size_t dropIndex(int code);

// The flow hashes of lb_abi.h, as the BPF programs compute them (for tests and for tools that
// predict where a flow goes). `forward` is the client's tuple to the frontend (dir ignored).
uint64_t flowHash(const skiff_ct_key& forward);
uint64_t sockHash(uint64_t cookie, const skiff_frontend_key& frontend);

}  // namespace skiff::ebpf
