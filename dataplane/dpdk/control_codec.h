#pragma once

// Conversions between the LB model (dataplane/) and the control protocol's messages
// (proto/skiff/dpdk/control.proto), the framing of messages on a stream socket, and the
// Prometheus text of the statistics.

#include <string>

#include "dataplane/dataplane.h"
#include "dataplane/status.h"
#include "skiff/dpdk/control.pb.h"

namespace skiff::dataplane::dpdk {

namespace v1 = ::skiff::dpdk::v1;

void toProto(const ServiceDelta& delta, v1::ApplyRequest& out);
// Checks every field's range (family by address length, enums, ports) and says where it failed
// ("upserted[2].frontends[0].protocol: 99 is not TCP, UDP or SCTP"); validate() is the caller's.
Result<ServiceDelta> fromProto(const v1::ApplyRequest& in);

void toProto(const DataplaneStats& stats, v1::Stats& out);
DataplaneStats fromProto(const v1::Stats& in);

// Prometheus text exposition (version 0.0.4) of everything in `stats`.
std::string prometheusText(const v1::Stats& stats);

// Length-prefixed messages on a connected stream socket (blocking; the caller sets timeouts).
inline constexpr uint32_t kMaxControlMessage = 64u << 20;
Status writeMessage(int fd, const google::protobuf::MessageLite& message);
Status readMessage(int fd, google::protobuf::MessageLite& message);

}  // namespace skiff::dataplane::dpdk
