#pragma once

#include "control/api/time.h"
#include "skiff/api/meta_v1.pb.h"

// meta/v1 Time and MicroTime from api::Timestamp, for the agent's status writers.
namespace skiff::kubelet {

inline void setTime(api::meta::v1::Time& out, const api::Timestamp& t) {
  out.set_seconds(t.seconds);
  out.set_nanos(0);  // meta/v1.Time has seconds precision on the wire
}

inline void setMicroTime(api::meta::v1::MicroTime& out, const api::Timestamp& t) {
  out.set_seconds(t.seconds);
  out.set_nanos(t.nanos / 1000 * 1000);
}

}  // namespace skiff::kubelet
