#include "control/controllers/controller_utils.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/message_differencer.h>

namespace skiff::controllers {

using api::Timestamp;
using api::core::v1::Pod;
using api::meta::v1::ObjectMeta;
using api::meta::v1::OwnerReference;

const char* toString(Action::Verb verb) {
  switch (verb) {
    case Action::Verb::kCreate:
      return "create";
    case Action::Verb::kUpdate:
      return "update";
    case Action::Verb::kUpdateStatus:
      return "update status";
    case Action::Verb::kDelete:
      return "delete";
  }
  return "?";
}

Timestamp toTimestamp(const api::meta::v1::Time& time) {
  return Timestamp{time.seconds(), time.nanos()};
}

void setTime(api::meta::v1::Time& time, const Timestamp& t) {
  time.set_seconds(t.seconds);
  if (t.nanos != 0) {
    time.set_nanos(t.nanos);
  } else {
    time.clear_nanos();
  }
}

int64_t millisBetween(const Timestamp& a, const Timestamp& b) {
  return (b.seconds - a.seconds) * 1000 + (static_cast<int64_t>(b.nanos) - a.nanos) / 1000000;
}

Timestamp addSeconds(Timestamp t, int64_t seconds) {
  t.seconds += seconds;
  return t;
}

bool olderThan(const ObjectMeta& a, const ObjectMeta& b) {
  const auto& ta = a.creation_timestamp();
  const auto& tb = b.creation_timestamp();
  if (ta.seconds() != tb.seconds()) return ta.seconds() < tb.seconds();
  if (ta.nanos() != tb.nanos()) return ta.nanos() < tb.nanos();
  return a.name() < b.name();
}

const OwnerReference* controllerOf(const ObjectMeta& meta) {
  for (const auto& ref : meta.owner_references()) {
    if (ref.controller()) return &ref;
  }
  return nullptr;
}

OwnerReference makeControllerRef(const ObjectMeta& owner, const api::ResourceType& owner_type) {
  OwnerReference ref;
  ref.set_api_version(owner_type.apiVersion());
  ref.set_kind(owner_type.kind);
  ref.set_name(owner.name());
  ref.set_uid(owner.uid());
  ref.set_controller(true);
  ref.set_block_owner_deletion(true);
  return ref;
}

bool isPodTerminal(const Pod& pod) {
  const std::string& phase = pod.status().phase();
  return phase == "Succeeded" || phase == "Failed";
}

bool isPodActive(const Pod& pod) {
  return !isPodTerminal(pod) && !pod.metadata().has_deletion_timestamp();
}

const api::core::v1::PodCondition* podCondition(const Pod& pod, std::string_view type) {
  for (const auto& c : pod.status().conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

bool isPodReady(const Pod& pod) {
  const auto* c = podCondition(pod, "Ready");
  return c != nullptr && c->status() == "True";
}

bool isPodAvailable(const Pod& pod, int32_t min_ready_seconds, const Timestamp& now) {
  const auto* c = podCondition(pod, "Ready");
  if (c == nullptr || c->status() != "True") return false;
  if (min_ready_seconds <= 0) return true;
  if (!c->has_last_transition_time()) return false;
  // Kubernetes: !c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(minReady).Before(now)
  Timestamp ready_at = addSeconds(toTimestamp(c->last_transition_time()), min_ready_seconds);
  return ready_at.seconds < now.seconds ||
         (ready_at.seconds == now.seconds && ready_at.nanos < now.nanos);
}

bool toleratesTaint(const api::core::v1::Toleration& toleration,
                    const api::core::v1::Taint& taint) {
  if (!toleration.effect().empty() && toleration.effect() != taint.effect()) return false;
  if (!toleration.key().empty() && toleration.key() != taint.key()) return false;
  const std::string& op = toleration.operator_();
  if (op == "Exists") return true;
  if (op.empty() || op == "Equal") {
    return !toleration.key().empty() && toleration.value() == taint.value();
  }
  return false;
}

uint32_t fnv32a(std::string_view bytes, uint32_t hash) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string safeEncodeString(std::string_view s) {
  // k8s.io/apimachinery/pkg/util/rand: no vowels, no look-alike characters.
  static constexpr std::string_view kAlphanums = "bcdfghjklmnpqrstvwxz2456789";
  std::string out(s.size(), ' ');
  for (size_t i = 0; i < s.size(); ++i) {
    out[i] = kAlphanums[static_cast<unsigned char>(s[i]) % kAlphanums.size()];
  }
  return out;
}

std::string computeTemplateHash(const api::core::v1::PodTemplateSpec& tmpl,
                                std::optional<int32_t> collision_count) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    tmpl.SerializeToCodedStream(&out);
  }
  uint32_t hash = fnv32a(bytes);
  if (collision_count) {
    uint32_t c = static_cast<uint32_t>(*collision_count);
    char le[4] = {static_cast<char>(c & 0xff), static_cast<char>((c >> 8) & 0xff),
                  static_cast<char>((c >> 16) & 0xff), static_cast<char>((c >> 24) & 0xff)};
    hash = fnv32a(std::string_view(le, 4), hash);
  }
  return safeEncodeString(std::to_string(hash));
}

int32_t scaledValueFromIntOrPercent(const api::runtime::IntOrString& value, int32_t total,
                                    bool round_up) {
  if (value.type() == api::runtime::IntOrString::INT) return value.int_val();
  const std::string& s = value.str_val();
  if (s.empty() || s.back() != '%') {
    throw std::invalid_argument(
        "invalid value for IntOrString: invalid type: string is not a "
        "percentage: \"" +
        s + "\"");
  }
  std::string digits = s.substr(0, s.size() - 1);
  size_t used = 0;
  int v = 0;
  try {
    v = std::stoi(digits, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (digits.empty() || used != digits.size()) {
    throw std::invalid_argument("invalid value for IntOrString: invalid value \"" + s + "\"");
  }
  double scaled = static_cast<double>(v) * total / 100.0;
  return static_cast<int32_t>(round_up ? std::ceil(scaled) : std::floor(scaled));
}

bool equalIgnoreHash(const api::core::v1::PodTemplateSpec& a,
                     const api::core::v1::PodTemplateSpec& b) {
  api::core::v1::PodTemplateSpec ca = a;
  api::core::v1::PodTemplateSpec cb = b;
  ca.mutable_metadata()->mutable_labels()->erase(std::string(kPodTemplateHashLabel));
  cb.mutable_metadata()->mutable_labels()->erase(std::string(kPodTemplateHashLabel));
  if (ca.metadata().labels().empty() && ca.metadata().ByteSizeLong() == 0) ca.clear_metadata();
  if (cb.metadata().labels().empty() && cb.metadata().ByteSizeLong() == 0) cb.clear_metadata();
  return google::protobuf::util::MessageDifferencer::Equals(ca, cb);
}

namespace {

bool requirementMatches(const api::core::v1::NodeSelectorRequirement& r,
                        const std::optional<std::string>& value) {
  const std::string& op = r.operator_();
  auto in = [&] {
    return value && std::find(r.values().begin(), r.values().end(), *value) != r.values().end();
  };
  if (op == "In") return in();
  if (op == "NotIn") return !in();
  if (op == "Exists") return value.has_value();
  if (op == "DoesNotExist") return !value.has_value();
  if (op == "Gt" || op == "Lt") {
    if (!value || r.values_size() != 1) return false;
    try {
      size_t used_a = 0, used_b = 0;
      long long have = std::stoll(*value, &used_a);
      long long want = std::stoll(r.values(0), &used_b);
      if (used_a != value->size() || used_b != r.values(0).size()) return false;
      return op == "Gt" ? have > want : have < want;
    } catch (const std::exception&) {
      return false;
    }
  }
  return false;
}

}  // namespace

bool nodeSelectorTermMatches(const api::core::v1::NodeSelectorTerm& term,
                             const api::core::v1::Node& node) {
  if (term.match_expressions_size() == 0 && term.match_fields_size() == 0) return false;
  const auto& labels = node.metadata().labels();
  for (const auto& r : term.match_expressions()) {
    auto it = labels.find(r.key());
    std::optional<std::string> value;
    if (it != labels.end()) value = it->second;
    if (!requirementMatches(r, value)) return false;
  }
  for (const auto& r : term.match_fields()) {
    std::optional<std::string> value;
    if (r.key() == "metadata.name") value = node.metadata().name();
    if (!requirementMatches(r, value)) return false;
  }
  return true;
}

bool nodeMatchesNodeSelector(const api::core::v1::NodeSelector& selector,
                             const api::core::v1::Node& node) {
  for (const auto& term : selector.node_selector_terms()) {
    if (nodeSelectorTermMatches(term, node)) return true;
  }
  return false;
}

}  // namespace skiff::controllers
