#include "control/controllers/deployment.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include <google/protobuf/util/message_differencer.h>

#include "control/api/selector.h"

namespace skiff::controllers {

using api::Timestamp;
using api::apps::v1::Deployment;
using api::apps::v1::DeploymentCondition;
using api::apps::v1::DeploymentStatus;
using api::apps::v1::ReplicaSet;
using api::core::v1::Pod;
using google::protobuf::util::MessageDifferencer;

namespace {

using RSPtr = std::shared_ptr<ReplicaSet>;

int32_t specReplicas(const Deployment& d) {
  return d.spec().has_replicas() ? d.spec().replicas() : 1;
}
int32_t rsReplicas(const ReplicaSet& rs) {
  return rs.spec().has_replicas() ? rs.spec().replicas() : 1;
}
bool isRollingUpdate(const Deployment& d) {
  return d.spec().strategy().type() != "Recreate";
}
bool hasProgressDeadline(const Deployment& d) {
  // Unset defaults to 600 s; MaxInt32 means none (as Kubernetes).
  return !d.spec().has_progress_deadline_seconds() ||
         d.spec().progress_deadline_seconds() != INT32_MAX;
}
int32_t progressDeadline(const Deployment& d) {
  return d.spec().has_progress_deadline_seconds() ? d.spec().progress_deadline_seconds() : 600;
}

std::optional<int64_t> parseInt(const std::string& s) {
  if (s.empty()) return std::nullopt;
  size_t used = 0;
  try {
    int64_t v = std::stoll(s, &used);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<int64_t> annotationInt(const ReplicaSet& rs, std::string_view name) {
  const auto& a = rs.metadata().annotations();
  auto it = a.find(std::string(name));
  if (it == a.end()) return std::nullopt;
  return parseInt(it->second);
}

int64_t revisionOf(const ReplicaSet& rs) {
  return annotationInt(rs, kRevisionAnnotation).value_or(0);
}

const DeploymentCondition* condition(const DeploymentStatus& s, std::string_view type) {
  for (const auto& c : s.conditions()) {
    if (c.type() == type) return &c;
  }
  return nullptr;
}

void removeCondition(DeploymentStatus& s, std::string_view type) {
  auto* conds = s.mutable_conditions();
  for (int i = conds->size() - 1; i >= 0; --i) {
    if (conds->Get(i).type() == type) conds->DeleteSubrange(i, 1);
  }
}

DeploymentCondition newCondition(std::string type, std::string status, std::string reason,
                                 std::string message, const Timestamp& now) {
  DeploymentCondition c;
  c.set_type(std::move(type));
  c.set_status(std::move(status));
  c.set_reason(std::move(reason));
  c.set_message(std::move(message));
  setTime(*c.mutable_last_update_time(), now);
  setTime(*c.mutable_last_transition_time(), now);
  return c;
}

// deploymentutil.SetDeploymentCondition.
void setCondition(DeploymentStatus& s, DeploymentCondition c) {
  const DeploymentCondition* current = condition(s, c.type());
  if (current != nullptr && current->status() == c.status() && current->reason() == c.reason()) {
    return;
  }
  if (current != nullptr && current->status() == c.status()) {
    *c.mutable_last_transition_time() = current->last_transition_time();
  }
  removeCondition(s, c.type());
  *s.add_conditions() = std::move(c);
}

bool olderRS(const RSPtr& a, const RSPtr& b) {
  return olderThan(a->metadata(), b->metadata());
}

int32_t sumSpec(const std::vector<RSPtr>& rss) {
  int32_t n = 0;
  for (const auto& rs : rss) {
    if (rs) n += rsReplicas(*rs);
  }
  return n;
}
int32_t sumStatus(const std::vector<RSPtr>& rss) {
  int32_t n = 0;
  for (const auto& rs : rss) {
    if (rs) n += rs->status().replicas();
  }
  return n;
}
int32_t sumAvailable(const std::vector<RSPtr>& rss) {
  int32_t n = 0;
  for (const auto& rs : rss) {
    if (rs) n += rs->status().available_replicas();
  }
  return n;
}
int32_t sumReady(const std::vector<RSPtr>& rss) {
  int32_t n = 0;
  for (const auto& rs : rss) {
    if (rs) n += rs->status().ready_replicas();
  }
  return n;
}

std::vector<RSPtr> filterActive(const std::vector<RSPtr>& rss) {
  std::vector<RSPtr> out;
  for (const auto& rs : rss) {
    if (rs && rsReplicas(*rs) > 0) out.push_back(rs);
  }
  return out;
}

std::vector<RSPtr> withNew(std::vector<RSPtr> old_rss, const RSPtr& new_rs) {
  if (new_rs) old_rss.push_back(new_rs);
  return old_rss;
}

class DeploymentSync {
 public:
  explicit DeploymentSync(const DeploymentInput& in) : in_(in), d_(*in.deployment) {}

  ReconcileResult run();

 private:
  bool claim();
  void markUpdated(const RSPtr& rs);
  std::pair<RSPtr, std::vector<RSPtr>> findNewAndOld() const;
  std::pair<RSPtr, std::vector<RSPtr>> getAllAndSyncRevision(bool create);
  RSPtr getNewReplicaSet(const RSPtr& existing, const std::vector<RSPtr>& old_rss, bool create);
  bool setNewReplicaSetAnnotations(ReplicaSet& rs, const std::string& new_revision, bool exists);
  bool setReplicasAnnotations(ReplicaSet& rs, int32_t desired, int32_t max);
  int32_t newRSNewReplicas(const std::vector<RSPtr>& all, const RSPtr& new_rs) const;
  bool scaleReplicaSet(const RSPtr& rs, int32_t new_scale);
  bool reconcileNewReplicaSet(const std::vector<RSPtr>& all, const RSPtr& new_rs);
  bool reconcileOldReplicaSets(const std::vector<RSPtr>& all, const std::vector<RSPtr>& old_rss,
                               const RSPtr& new_rs);
  int32_t cleanupUnhealthyReplicas(std::vector<RSPtr> old_rss, int32_t max_cleanup);
  int32_t scaleDownOldForRollingUpdate(const std::vector<RSPtr>& all, std::vector<RSPtr> old_rss);
  void scale(const RSPtr& new_rs, std::vector<RSPtr> old_rss);
  bool isScalingEvent();
  void checkPausedConditions();
  void cleanup(const std::vector<RSPtr>& old_rss);
  DeploymentStatus calculateStatus(const std::vector<RSPtr>& all, const RSPtr& new_rs) const;
  void syncStatus(const std::vector<RSPtr>& all, const RSPtr& new_rs);
  void syncRolloutStatus(const std::vector<RSPtr>& all, const RSPtr& new_rs);
  bool oldPodsRunning(const RSPtr& new_rs, const std::vector<RSPtr>& old_rss) const;
  void rolloutRolling();
  void rolloutRecreate();
  void sync();
  void finish();

  const DeploymentInput& in_;
  Deployment d_;            // the working copy
  std::vector<RSPtr> rss_;  // claimed ReplicaSets, working copies
  std::set<const ReplicaSet*> updated_;
  std::set<const ReplicaSet*> created_;
  ReconcileResult result_;
  std::string error_;  // stops the sync (after the writes so far)
};

void DeploymentSync::markUpdated(const RSPtr& rs) {
  if (created_.count(rs.get()) != 0 || updated_.count(rs.get()) != 0) return;
  updated_.insert(rs.get());
  Action a;
  a.verb = Action::Verb::kUpdate;
  a.type = &typeOf<ReplicaSet>();
  a.ns = rs->metadata().namespace_();
  a.name = rs->metadata().name();
  a.object = rs;
  result_.actions.push_back(std::move(a));
}

bool DeploymentSync::claim() {
  const auto& meta = d_.metadata();
  std::string err;
  auto selector = api::labels::Selector::tryFromProto(
      d_.spec().has_selector() ? &d_.spec().selector() : nullptr, &err, "spec.selector");
  if (!selector) {
    result_.warning_reason = "InvalidSelector";
    result_.warning = "Deployment " + meta.namespace_() + "/" + meta.name() + ": " + err;
    return false;
  }
  bool deleting = meta.has_deletion_timestamp();
  for (const ReplicaSet* rs : in_.replica_sets) {
    const auto& rm = rs->metadata();
    const auto* ref = controllerOf(rm);
    bool matches = selector->matches(rm.labels());
    if (ref != nullptr) {
      if (ref->uid() != meta.uid()) continue;
      if (matches) {
        rss_.push_back(std::make_shared<ReplicaSet>(*rs));
        continue;
      }
      if (deleting) continue;
      auto copy = std::make_shared<ReplicaSet>(*rs);
      auto* refs = copy->mutable_metadata()->mutable_owner_references();
      for (int i = 0; i < refs->size(); ++i) {
        if (refs->Get(i).uid() == meta.uid()) {
          refs->DeleteSubrange(i, 1);
          break;
        }
      }
      markUpdated(copy);
      continue;
    }
    if (deleting || !matches || rm.has_deletion_timestamp()) continue;
    auto copy = std::make_shared<ReplicaSet>(*rs);
    *copy->mutable_metadata()->add_owner_references() =
        makeControllerRef(meta, typeOf<Deployment>());
    rss_.push_back(copy);
    markUpdated(copy);
  }
  return true;
}

std::pair<RSPtr, std::vector<RSPtr>> DeploymentSync::findNewAndOld() const {
  std::vector<RSPtr> sorted = rss_;
  std::sort(sorted.begin(), sorted.end(), olderRS);
  RSPtr new_rs;
  for (const auto& rs : sorted) {
    if (equalIgnoreHash(rs->spec().template_(), d_.spec().template_())) {
      new_rs = rs;
      break;
    }
  }
  std::vector<RSPtr> old_rss;
  for (const auto& rs : sorted) {
    if (rs != new_rs) old_rss.push_back(rs);
  }
  return {new_rs, old_rss};
}

std::pair<RSPtr, std::vector<RSPtr>> DeploymentSync::getAllAndSyncRevision(bool create) {
  auto [existing, old_rss] = findNewAndOld();
  RSPtr new_rs = getNewReplicaSet(existing, old_rss, create);
  return {new_rs, old_rss};
}

bool DeploymentSync::setReplicasAnnotations(ReplicaSet& rs, int32_t desired, int32_t max) {
  auto* a = rs.mutable_metadata()->mutable_annotations();
  bool changed = false;
  std::string ds = std::to_string(desired), ms = std::to_string(max);
  auto& dv = (*a)[std::string(kDesiredReplicasAnnotation)];
  if (dv != ds) {
    dv = ds;
    changed = true;
  }
  auto& mv = (*a)[std::string(kMaxReplicasAnnotation)];
  if (mv != ms) {
    mv = ms;
    changed = true;
  }
  return changed;
}

bool DeploymentSync::setNewReplicaSetAnnotations(ReplicaSet& rs, const std::string& new_revision,
                                                 bool exists) {
  static const std::set<std::string> kSkip = {"kubectl.kubernetes.io/last-applied-configuration",
                                              std::string(kRevisionAnnotation),
                                              std::string(kRevisionHistoryAnnotation),
                                              std::string(kDesiredReplicasAnnotation),
                                              std::string(kMaxReplicasAnnotation),
                                              "deprecated.deployment.rollback.to"};
  auto* a = rs.mutable_metadata()->mutable_annotations();
  bool changed = false;
  for (const auto& [k, v] : d_.metadata().annotations()) {
    if (kSkip.count(k) != 0) continue;
    auto it = a->find(k);
    if (it == a->end() || it->second != v) {
      (*a)[k] = v;
      changed = true;
    }
  }
  auto it = a->find(std::string(kRevisionAnnotation));
  bool had = it != a->end();
  std::string old_revision = had ? it->second : "";
  int64_t old_int = 0;
  if (!old_revision.empty()) {
    auto v = parseInt(old_revision);
    if (!v) return false;
    old_int = *v;
  }
  int64_t new_int = parseInt(new_revision).value_or(0);
  if (old_int < new_int) {
    (*a)[std::string(kRevisionAnnotation)] = new_revision;
    changed = true;
  }
  if (had && old_int < new_int) {
    // Rolled back to this ReplicaSet: keep the revisions it had.
    constexpr size_t kMaxLen = 2000;
    std::string history = (*a)[std::string(kRevisionHistoryAnnotation)];
    if (history.empty()) {
      (*a)[std::string(kRevisionHistoryAnnotation)] = old_revision;
    } else {
      std::vector<std::string> parts;
      size_t start = 0;
      while (true) {
        size_t comma = history.find(',', start);
        parts.push_back(history.substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      size_t total = history.size() + old_revision.size() + 1;
      size_t first = 0;
      while (total > kMaxLen && first < parts.size()) {
        total -= parts[first].size() + 1;
        ++first;
      }
      if (total <= kMaxLen) {
        std::string joined;
        for (size_t i = first; i < parts.size(); ++i)
          joined += parts[i] + ",";
        joined += old_revision;
        (*a)[std::string(kRevisionHistoryAnnotation)] = joined;
      }
    }
  }
  if (!exists && setReplicasAnnotations(rs, specReplicas(d_), specReplicas(d_) + maxSurge(d_))) {
    changed = true;
  }
  return changed;
}

int32_t DeploymentSync::newRSNewReplicas(const std::vector<RSPtr>& all, const RSPtr& new_rs) const {
  if (!isRollingUpdate(d_)) return specReplicas(d_);
  int32_t current = sumSpec(all);
  int32_t max_total = specReplicas(d_) + maxSurge(d_);
  if (current >= max_total) return rsReplicas(*new_rs);
  int32_t up = std::min(max_total - current, specReplicas(d_) - rsReplicas(*new_rs));
  return rsReplicas(*new_rs) + up;
}

RSPtr DeploymentSync::getNewReplicaSet(const RSPtr& existing, const std::vector<RSPtr>& old_rss,
                                       bool create) {
  int64_t max_old = 0;
  for (const auto& rs : old_rss)
    max_old = std::max(max_old, revisionOf(*rs));
  std::string new_revision = std::to_string(max_old + 1);
  auto* ann = d_.mutable_metadata()->mutable_annotations();
  if (existing) {
    bool changed = setNewReplicaSetAnnotations(*existing, new_revision, true);
    if (existing->spec().min_ready_seconds() != d_.spec().min_ready_seconds()) {
      existing->mutable_spec()->set_min_ready_seconds(d_.spec().min_ready_seconds());
      changed = true;
    }
    if (changed) markUpdated(existing);
    std::string rev = existing->metadata().annotations().count(std::string(kRevisionAnnotation))
                          ? existing->metadata().annotations().at(std::string(kRevisionAnnotation))
                          : "";
    if ((*ann)[std::string(kRevisionAnnotation)] != rev)
      (*ann)[std::string(kRevisionAnnotation)] = rev;
    if (hasProgressDeadline(d_) && condition(d_.status(), "Progressing") == nullptr) {
      setCondition(
          *d_.mutable_status(),
          newCondition("Progressing", "True", "FoundNewReplicaSet",
                       "Found new replica set \"" + existing->metadata().name() + "\"", in_.now));
    }
    return existing;
  }
  if (!create) return nullptr;

  std::optional<int32_t> collisions;
  if (d_.status().has_collision_count()) collisions = d_.status().collision_count();
  std::string hash = computeTemplateHash(d_.spec().template_(), collisions);
  auto rs = std::make_shared<ReplicaSet>();
  auto* m = rs->mutable_metadata();
  m->set_name(d_.metadata().name() + "-" + hash);
  m->set_namespace_(d_.metadata().namespace_());
  *m->add_owner_references() = makeControllerRef(d_.metadata(), typeOf<Deployment>());
  auto* spec = rs->mutable_spec();
  *spec->mutable_template_() = d_.spec().template_();
  (*spec->mutable_template_()->mutable_metadata()->mutable_labels())[std::string(
      kPodTemplateHashLabel)] = hash;
  *m->mutable_labels() = spec->template_().metadata().labels();
  *spec->mutable_selector() = d_.spec().selector();
  (*spec->mutable_selector()->mutable_match_labels())[std::string(kPodTemplateHashLabel)] = hash;
  spec->set_min_ready_seconds(d_.spec().min_ready_seconds());
  spec->set_replicas(0);

  // A ReplicaSet of that name that is not this template's: a hash collision.
  for (const ReplicaSet* other : in_.replica_sets) {
    if (other->metadata().name() != m->name()) continue;
    const auto* ref = controllerOf(other->metadata());
    if (ref != nullptr && ref->uid() == d_.metadata().uid() &&
        equalIgnoreHash(other->spec().template_(), d_.spec().template_())) {
      // Ours, and the claim above did not take it (being deleted): wait for it.
      error_ = "replica set " + m->name() + " exists and is being deleted";
      return nullptr;
    }
    d_.mutable_status()->set_collision_count(d_.status().collision_count() + 1);
    error_ = "hash collision for replica set " + m->name();
    return nullptr;
  }

  std::vector<RSPtr> all = withNew(old_rss, rs);
  int32_t replicas = newRSNewReplicas(all, rs);
  spec->set_replicas(replicas);
  setNewReplicaSetAnnotations(*rs, new_revision, false);

  Action a;
  a.verb = Action::Verb::kCreate;
  a.type = &typeOf<ReplicaSet>();
  a.ns = m->namespace_();
  a.name = m->name();
  a.object = rs;
  if (replicas > 0) {
    a.event_reason = "ScalingReplicaSet";
    a.event_message =
        "Scaled up replica set " + m->name() + " from 0 to " + std::to_string(replicas);
  }
  result_.actions.push_back(std::move(a));
  created_.insert(rs.get());
  rss_.push_back(rs);

  (*ann)[std::string(kRevisionAnnotation)] = new_revision;
  if (hasProgressDeadline(d_)) {
    setCondition(*d_.mutable_status(),
                 newCondition("Progressing", "True", "NewReplicaSetCreated",
                              "Created new replica set \"" + m->name() + "\"", in_.now));
  }
  return rs;
}

bool DeploymentSync::scaleReplicaSet(const RSPtr& rs, int32_t new_scale) {
  int32_t old_scale = rsReplicas(*rs);
  bool size_changed = old_scale != new_scale;
  ReplicaSet probe = *rs;
  bool ann_changed =
      setReplicasAnnotations(probe, specReplicas(d_), specReplicas(d_) + maxSurge(d_));
  if (!size_changed && !ann_changed) return false;
  *rs->mutable_metadata()->mutable_annotations() = probe.metadata().annotations();
  rs->mutable_spec()->set_replicas(new_scale);
  bool was_new = created_.count(rs.get()) != 0;
  markUpdated(rs);
  if (size_changed && !was_new) {
    // The event goes with the RS's write (its last Action).
    for (auto& a : result_.actions) {
      if (a.object == rs) {
        a.event_reason = "ScalingReplicaSet";
        a.event_message = std::string(new_scale > old_scale ? "Scaled up" : "Scaled down") +
                          " replica set " + rs->metadata().name() + " from " +
                          std::to_string(old_scale) + " to " + std::to_string(new_scale);
      }
    }
  }
  return size_changed;
}

bool DeploymentSync::reconcileNewReplicaSet(const std::vector<RSPtr>& all, const RSPtr& new_rs) {
  if (!new_rs) return false;
  int32_t want = specReplicas(d_);
  if (rsReplicas(*new_rs) == want) return false;
  if (rsReplicas(*new_rs) > want) return scaleReplicaSet(new_rs, want);
  return scaleReplicaSet(new_rs, newRSNewReplicas(all, new_rs));
}

int32_t DeploymentSync::cleanupUnhealthyReplicas(std::vector<RSPtr> old_rss, int32_t max_cleanup) {
  std::sort(old_rss.begin(), old_rss.end(), olderRS);
  int32_t total = 0;
  for (const auto& rs : old_rss) {
    if (total >= max_cleanup) break;
    if (rsReplicas(*rs) == 0) continue;
    int32_t unhealthy = rsReplicas(*rs) - rs->status().available_replicas();
    if (unhealthy <= 0) continue;
    int32_t down = std::min(max_cleanup - total, unhealthy);
    scaleReplicaSet(rs, rsReplicas(*rs) - down);
    total += down;
  }
  return total;
}

int32_t DeploymentSync::scaleDownOldForRollingUpdate(const std::vector<RSPtr>& all,
                                                     std::vector<RSPtr> old_rss) {
  int32_t min_available = specReplicas(d_) - maxUnavailable(d_);
  int32_t available = sumAvailable(all);
  if (available <= min_available) return 0;
  std::sort(old_rss.begin(), old_rss.end(), olderRS);
  int32_t total_down = available - min_available;
  int32_t total = 0;
  for (const auto& rs : old_rss) {
    if (total >= total_down) break;
    if (rsReplicas(*rs) == 0) continue;
    int32_t down = std::min(rsReplicas(*rs), total_down - total);
    scaleReplicaSet(rs, rsReplicas(*rs) - down);
    total += down;
  }
  return total;
}

bool DeploymentSync::reconcileOldReplicaSets(const std::vector<RSPtr>& all,
                                             const std::vector<RSPtr>& old_rss,
                                             const RSPtr& new_rs) {
  if (sumSpec(old_rss) == 0) return false;
  int32_t all_pods = sumSpec(all);
  int32_t min_available = specReplicas(d_) - maxUnavailable(d_);
  int32_t new_unavailable =
      new_rs ? rsReplicas(*new_rs) - new_rs->status().available_replicas() : 0;
  int32_t max_scaled_down = all_pods - min_available - new_unavailable;
  if (max_scaled_down <= 0) return false;
  int32_t cleaned = cleanupUnhealthyReplicas(old_rss, max_scaled_down);
  int32_t scaled = scaleDownOldForRollingUpdate(withNew(old_rss, new_rs), old_rss);
  return cleaned + scaled > 0;
}

void DeploymentSync::scale(const RSPtr& new_rs, std::vector<RSPtr> old_rss) {
  // FindActiveOrLatest.
  if (new_rs || !old_rss.empty()) {
    std::vector<RSPtr> newest_first = old_rss;
    std::sort(newest_first.begin(), newest_first.end(),
              [](const RSPtr& a, const RSPtr& b) { return olderRS(b, a); });
    std::vector<RSPtr> active = filterActive(withNew(newest_first, new_rs));
    RSPtr only;
    if (active.empty()) {
      only = new_rs ? new_rs : newest_first.front();
    } else if (active.size() == 1) {
      only = active.front();
    }
    if (only) {
      if (rsReplicas(*only) != specReplicas(d_)) scaleReplicaSet(only, specReplicas(d_));
      return;
    }
  }
  // IsSaturated: the new RS runs everything; the old ones go.
  if (new_rs) {
    auto desired = annotationInt(*new_rs, kDesiredReplicasAnnotation);
    if (desired && *desired == specReplicas(d_) && rsReplicas(*new_rs) == specReplicas(d_) &&
        new_rs->status().available_replicas() == specReplicas(d_)) {
      for (const auto& rs : filterActive(old_rss))
        scaleReplicaSet(rs, 0);
      return;
    }
  }
  if (!isRollingUpdate(d_)) return;
  std::vector<RSPtr> all = filterActive(withNew(old_rss, new_rs));
  int32_t all_replicas = sumSpec(all);
  int32_t allowed = specReplicas(d_) > 0 ? specReplicas(d_) + maxSurge(d_) : 0;
  int32_t to_add = allowed - all_replicas;
  if (to_add > 0) {
    // Bigger first, newer first on ties (ReplicaSetsBySizeNewer).
    std::stable_sort(all.begin(), all.end(), [](const RSPtr& a, const RSPtr& b) {
      if (rsReplicas(*a) == rsReplicas(*b)) return olderRS(b, a);
      return rsReplicas(*a) > rsReplicas(*b);
    });
  } else {
    std::stable_sort(all.begin(), all.end(), [](const RSPtr& a, const RSPtr& b) {
      if (rsReplicas(*a) == rsReplicas(*b)) return olderRS(a, b);
      return rsReplicas(*a) > rsReplicas(*b);
    });
  }
  std::map<const ReplicaSet*, int32_t> sizes;
  int32_t added = 0;
  for (const auto& rs : all) {
    int32_t size = rsReplicas(*rs);
    if (to_add != 0 && to_add != added && size != 0) {
      // getReplicaSetFraction.
      int32_t fraction;
      if (specReplicas(d_) == 0) {
        fraction = -size;
      } else {
        int32_t deployment_replicas = specReplicas(d_) + maxSurge(d_);
        auto annotated = annotationInt(*rs, kMaxReplicasAnnotation);
        int64_t base = annotated ? *annotated : d_.status().replicas();
        if (base <= 0) {
          fraction = 0;
        } else {
          double new_size =
              static_cast<double>(size) * deployment_replicas / static_cast<double>(base);
          fraction = static_cast<int32_t>(std::lround(new_size)) - size;
        }
      }
      int32_t allowed_now = to_add - added;
      int32_t proportion =
          to_add > 0 ? std::min(fraction, allowed_now) : std::max(fraction, allowed_now);
      sizes[rs.get()] = size + proportion;
      added += proportion;
    } else {
      sizes[rs.get()] = size;
    }
  }
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& rs = all[i];
    if (i == 0 && to_add != 0) {
      int32_t leftover = to_add - added;
      sizes[rs.get()] = std::max(0, sizes[rs.get()] + leftover);
    }
    scaleReplicaSet(rs, sizes[rs.get()]);
  }
}

bool DeploymentSync::isScalingEvent() {
  auto [new_rs, old_rss] = findNewAndOld();
  for (const auto& rs : filterActive(withNew(old_rss, new_rs))) {
    auto desired = annotationInt(*rs, kDesiredReplicasAnnotation);
    if (!desired) continue;
    if (*desired != specReplicas(d_)) return true;
  }
  return false;
}

void DeploymentSync::checkPausedConditions() {
  if (!hasProgressDeadline(d_)) return;
  const auto* cond = condition(d_.status(), "Progressing");
  if (cond != nullptr && cond->reason() == "ProgressDeadlineExceeded") return;
  bool paused_cond = cond != nullptr && cond->reason() == "DeploymentPaused";
  if (d_.spec().paused() && !paused_cond) {
    setCondition(*d_.mutable_status(), newCondition("Progressing", "Unknown", "DeploymentPaused",
                                                    "Deployment is paused", in_.now));
  } else if (!d_.spec().paused() && paused_cond) {
    setCondition(*d_.mutable_status(), newCondition("Progressing", "Unknown", "DeploymentResumed",
                                                    "Deployment is resumed", in_.now));
  }
}

void DeploymentSync::cleanup(const std::vector<RSPtr>& old_rss) {
  int32_t limit = d_.spec().has_revision_history_limit() ? d_.spec().revision_history_limit() : 10;
  std::vector<RSPtr> cleanable;
  for (const auto& rs : old_rss) {
    if (!rs->metadata().has_deletion_timestamp()) cleanable.push_back(rs);
  }
  int diff = static_cast<int>(cleanable.size()) - limit;
  if (diff <= 0) return;
  std::sort(cleanable.begin(), cleanable.end(), [](const RSPtr& a, const RSPtr& b) {
    if (revisionOf(*a) == revisionOf(*b)) return olderRS(a, b);
    return revisionOf(*a) < revisionOf(*b);
  });
  for (int i = 0; i < diff; ++i) {
    const auto& rs = cleanable[i];
    if (rs->status().replicas() != 0 || rsReplicas(*rs) != 0 ||
        rs->metadata().generation() > rs->status().observed_generation() ||
        updated_.count(rs.get()) != 0) {
      continue;
    }
    Action a;
    a.verb = Action::Verb::kDelete;
    a.type = &typeOf<ReplicaSet>();
    a.ns = rs->metadata().namespace_();
    a.name = rs->metadata().name();
    a.precondition_uid = rs->metadata().uid();
    result_.actions.push_back(std::move(a));
  }
}

DeploymentStatus DeploymentSync::calculateStatus(const std::vector<RSPtr>& all,
                                                 const RSPtr& new_rs) const {
  int32_t available = sumAvailable(all);
  int32_t total = sumSpec(all);
  DeploymentStatus s;
  s.set_observed_generation(d_.metadata().generation());
  s.set_replicas(sumStatus(all));
  s.set_updated_replicas(new_rs ? new_rs->status().replicas() : 0);
  s.set_ready_replicas(sumReady(all));
  s.set_available_replicas(available);
  s.set_unavailable_replicas(std::max(0, total - available));
  if (d_.status().has_collision_count()) s.set_collision_count(d_.status().collision_count());
  *s.mutable_conditions() = d_.status().conditions();
  if (available >= specReplicas(d_) - maxUnavailable(d_)) {
    setCondition(s, newCondition("Available", "True", "MinimumReplicasAvailable",
                                 "Deployment has minimum availability.", in_.now));
  } else {
    setCondition(s, newCondition("Available", "False", "MinimumReplicasUnavailable",
                                 "Deployment does not have minimum availability.", in_.now));
  }
  return s;
}

bool deploymentComplete(const Deployment& d, const DeploymentStatus& s) {
  int32_t r = specReplicas(d);
  return s.updated_replicas() == r && s.replicas() == r && s.available_replicas() == r &&
         s.observed_generation() >= d.metadata().generation();
}

bool deploymentProgressing(const Deployment& d, const DeploymentStatus& s) {
  const auto& old = d.status();
  int32_t old_old = old.replicas() - old.updated_replicas();
  int32_t new_old = s.replicas() - s.updated_replicas();
  return s.updated_replicas() > old.updated_replicas() || new_old < old_old ||
         s.ready_replicas() > old.ready_replicas() ||
         s.available_replicas() > old.available_replicas();
}

void DeploymentSync::syncStatus(const std::vector<RSPtr>& all, const RSPtr& new_rs) {
  *d_.mutable_status() = calculateStatus(all, new_rs);
}

void DeploymentSync::syncRolloutStatus(const std::vector<RSPtr>& all, const RSPtr& new_rs) {
  DeploymentStatus s = calculateStatus(all, new_rs);
  if (!hasProgressDeadline(d_)) removeCondition(s, "Progressing");
  const auto* current = condition(d_.status(), "Progressing");
  bool complete = s.replicas() == s.updated_replicas() && current != nullptr &&
                  current->reason() == "NewReplicaSetAvailable";
  if (hasProgressDeadline(d_) && !complete) {
    std::string subject = new_rs ? "ReplicaSet \"" + new_rs->metadata().name() + "\""
                                 : "Deployment \"" + d_.metadata().name() + "\"";
    if (deploymentComplete(d_, s)) {
      setCondition(s, newCondition("Progressing", "True", "NewReplicaSetAvailable",
                                   subject + " has successfully progressed.", in_.now));
    } else if (deploymentProgressing(d_, s)) {
      auto c = newCondition("Progressing", "True", "ReplicaSetUpdated",
                            subject + " is progressing.", in_.now);
      if (current != nullptr) {
        if (current->status() == "True") {
          *c.mutable_last_transition_time() = current->last_transition_time();
        }
        removeCondition(s, "Progressing");
      }
      setCondition(s, std::move(c));
    } else {
      // DeploymentTimedOut.
      const auto* pc = condition(s, "Progressing");
      bool timed_out = false;
      if (pc != nullptr && pc->reason() != "NewReplicaSetAvailable") {
        if (pc->reason() == "ProgressDeadlineExceeded") {
          timed_out = true;
        } else {
          Timestamp deadline =
              addSeconds(toTimestamp(pc->last_update_time()), progressDeadline(d_));
          timed_out = millisBetween(deadline, in_.now) > 0;
        }
      }
      if (timed_out) {
        setCondition(s, newCondition("Progressing", "False", "ProgressDeadlineExceeded",
                                     subject + " has timed out progressing.", in_.now));
      }
    }
  }
  // ReplicaFailure from the new ReplicaSet (getReplicaFailures).
  const api::apps::v1::ReplicaSetCondition* failure = nullptr;
  for (const auto& rs : all) {
    if (!rs) continue;
    for (const auto& c : rs->status().conditions()) {
      if (c.type() == "ReplicaFailure" && (failure == nullptr || rs == new_rs)) failure = &c;
    }
  }
  if (failure != nullptr) {
    DeploymentCondition c;
    c.set_type("ReplicaFailure");
    c.set_status(failure->status());
    c.set_reason(failure->reason());
    c.set_message(failure->message());
    *c.mutable_last_update_time() = failure->last_transition_time();
    *c.mutable_last_transition_time() = failure->last_transition_time();
    setCondition(s, std::move(c));
  } else {
    removeCondition(s, "ReplicaFailure");
  }
  // requeueStuckDeployment: look again when the deadline passes.
  const auto* pc = condition(s, "Progressing");
  if (hasProgressDeadline(d_) && pc != nullptr && !deploymentComplete(d_, s) &&
      pc->reason() != "ProgressDeadlineExceeded") {
    Timestamp deadline = addSeconds(toTimestamp(pc->last_update_time()), progressDeadline(d_));
    result_.requeueAfter(std::chrono::milliseconds(millisBetween(in_.now, deadline) + 1));
  }
  *d_.mutable_status() = std::move(s);
}

bool DeploymentSync::oldPodsRunning(const RSPtr& new_rs, const std::vector<RSPtr>& old_rss) const {
  if (sumStatus(old_rss) > 0) return true;
  std::set<std::string> old_uids;
  for (const auto& rs : old_rss)
    old_uids.insert(rs->metadata().uid());
  for (const Pod* pod : in_.pods) {
    const auto* ref = controllerOf(pod->metadata());
    if (ref == nullptr || old_uids.count(ref->uid()) == 0) continue;
    if (new_rs && ref->uid() == new_rs->metadata().uid()) continue;
    if (isPodTerminal(*pod)) continue;
    return true;
  }
  return false;
}

void DeploymentSync::rolloutRolling() {
  auto [new_rs, old_rss] = getAllAndSyncRevision(true);
  if (!error_.empty()) return;
  std::vector<RSPtr> all = withNew(old_rss, new_rs);
  if (reconcileNewReplicaSet(all, new_rs)) {
    syncRolloutStatus(all, new_rs);
    return;
  }
  if (reconcileOldReplicaSets(all, filterActive(old_rss), new_rs)) {
    syncRolloutStatus(all, new_rs);
    return;
  }
  if (deploymentComplete(d_, d_.status())) cleanup(old_rss);
  syncRolloutStatus(all, new_rs);
}

void DeploymentSync::rolloutRecreate() {
  auto [new_rs, old_rss] = getAllAndSyncRevision(false);
  std::vector<RSPtr> all = withNew(old_rss, new_rs);
  bool scaled_down = false;
  for (const auto& rs : filterActive(old_rss)) {
    if (scaleReplicaSet(rs, 0)) scaled_down = true;
  }
  if (scaled_down) {
    syncRolloutStatus(all, new_rs);
    return;
  }
  if (oldPodsRunning(new_rs, old_rss)) {
    syncRolloutStatus(all, new_rs);
    return;
  }
  if (!new_rs) {
    auto [n, o] = getAllAndSyncRevision(true);
    if (!error_.empty()) return;
    new_rs = n;
    all = withNew(o, n);
  }
  reconcileNewReplicaSet(all, new_rs);
  if (deploymentComplete(d_, d_.status())) cleanup(old_rss);
  syncRolloutStatus(all, new_rs);
}

void DeploymentSync::sync() {
  auto [new_rs, old_rss] = getAllAndSyncRevision(false);
  scale(new_rs, old_rss);
  if (d_.spec().paused()) cleanup(old_rss);
  syncStatus(withNew(old_rss, new_rs), new_rs);
}

void DeploymentSync::finish() {
  const Deployment& orig = *in_.deployment;
  bool ann_changed = false;
  {
    const auto& a = d_.metadata().annotations();
    const auto& b = orig.metadata().annotations();
    ann_changed = a.size() != b.size();
    for (const auto& [k, v] : a) {
      auto it = b.find(k);
      if (it == b.end() || it->second != v) ann_changed = true;
    }
  }
  if (ann_changed) {
    auto copy = std::make_shared<Deployment>(orig);
    *copy->mutable_metadata()->mutable_annotations() = d_.metadata().annotations();
    Action a;
    a.verb = Action::Verb::kUpdate;
    a.type = &typeOf<Deployment>();
    a.ns = orig.metadata().namespace_();
    a.name = orig.metadata().name();
    a.object = std::move(copy);
    result_.actions.push_back(std::move(a));
  }
  if (!MessageDifferencer::Equals(d_.status(), orig.status())) {
    auto copy = std::make_shared<Deployment>(orig);
    *copy->mutable_status() = d_.status();
    Action a;
    a.verb = Action::Verb::kUpdateStatus;
    a.type = &typeOf<Deployment>();
    a.ns = orig.metadata().namespace_();
    a.name = orig.metadata().name();
    a.object = std::move(copy);
    result_.actions.push_back(std::move(a));
  }
}

ReconcileResult DeploymentSync::run() {
  const auto& sel = d_.spec().selector();
  if (!d_.spec().has_selector() ||
      (sel.match_labels().empty() && sel.match_expressions().empty())) {
    result_.warning_reason = "SelectingAll";
    result_.warning = "This deployment is selecting all pods. A non-empty selector is required.";
    if (d_.status().observed_generation() < d_.metadata().generation()) {
      d_.mutable_status()->set_observed_generation(d_.metadata().generation());
    }
    finish();
    return std::move(result_);
  }
  try {
    if (isRollingUpdate(d_)) resolveFenceposts(d_);
  } catch (const std::invalid_argument& e) {
    result_.warning_reason = "InvalidStrategy";
    result_.warning = std::string("spec.strategy.rollingUpdate: ") + e.what();
    return std::move(result_);
  }
  if (!claim()) return std::move(result_);
  if (d_.metadata().has_deletion_timestamp()) {
    auto [new_rs, old_rss] = getAllAndSyncRevision(false);
    syncStatus(withNew(old_rss, new_rs), new_rs);
  } else {
    checkPausedConditions();
    if (d_.spec().paused() || isScalingEvent()) {
      sync();
    } else if (isRollingUpdate(d_)) {
      rolloutRolling();
    } else {
      rolloutRecreate();
    }
  }
  finish();
  if (!error_.empty() && result_.warning.empty()) {
    result_.warning_reason = "ReplicaSetCreateError";
    result_.warning = error_;
    result_.requeueAfter(std::chrono::milliseconds(1));
  }
  return std::move(result_);
}

}  // namespace

std::pair<int32_t, int32_t> resolveFenceposts(const Deployment& d) {
  int32_t desired = specReplicas(d);
  api::runtime::IntOrString def;
  def.set_type(api::runtime::IntOrString::STRING);
  def.set_str_val("25%");
  const auto& ru = d.spec().strategy().rolling_update();
  const auto& surge_v = ru.has_max_surge() ? ru.max_surge() : def;
  const auto& unavail_v = ru.has_max_unavailable() ? ru.max_unavailable() : def;
  int32_t surge = scaledValueFromIntOrPercent(surge_v, desired, true);
  int32_t unavailable = scaledValueFromIntOrPercent(unavail_v, desired, false);
  if (surge == 0 && unavailable == 0) unavailable = 1;
  return {surge, unavailable};
}

int32_t maxUnavailable(const Deployment& d) {
  if (!isRollingUpdate(d) || specReplicas(d) == 0) return 0;
  int32_t u = resolveFenceposts(d).second;
  return std::min(u, specReplicas(d));
}

int32_t maxSurge(const Deployment& d) {
  if (!isRollingUpdate(d)) return 0;
  return resolveFenceposts(d).first;
}

ReconcileResult reconcileDeployment(const DeploymentInput& input) {
  return DeploymentSync(input).run();
}

}  // namespace skiff::controllers
