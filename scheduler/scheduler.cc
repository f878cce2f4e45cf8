#include "scheduler/scheduler.h"

#include <google/protobuf/util/message_differencer.h>

#include <cstdio>

#include "control/api/json.h"
#include "control/api/time.h"
#include "control/client/typed.h"
#include "scheduler/plugins/plugins.h"

namespace skiff::scheduler {
namespace {

using google::protobuf::util::MessageDifferencer;

// Binds through pods/{name}/binding (kube-scheduler's DefaultBinder).
class DefaultBinder : public BindPlugin {
 public:
  explicit DefaultBinder(client::Client& client) : client_(client) {}
  std::string_view name() const override { return "DefaultBinder"; }
  Status bind(CycleState&, const PodInfo& pod, const std::string& node) override {
    try {
      client_.bind(pod.pod->metadata().namespace_(), pod.pod->metadata().name(), node);
      return {};
    } catch (const client::ApiError& e) {
      return Status::error(e.what());
    }
  }

 private:
  client::Client& client_;
};

// Whether a change to a pending pod can change where it fits (kube-scheduler skips updates that
// only touch status, resourceVersion and managed fields: its own condition writes among them).
bool schedulingRelevantPodChange(const Pod& a, const Pod& b) {
  if (!MessageDifferencer::Equals(a.spec(), b.spec())) return true;
  const auto& la = a.metadata().labels();
  const auto& lb = b.metadata().labels();
  if (la.size() != lb.size()) return true;
  for (const auto& [k, v] : la) {
    auto it = lb.find(k);
    if (it == lb.end() || it->second != v) return true;
  }
  return false;
}

bool schedulingRelevantNodeChange(const Node& a, const Node& b) {
  if (!MessageDifferencer::Equals(a.spec(), b.spec())) return true;
  const auto& la = a.metadata().labels();
  const auto& lb = b.metadata().labels();
  if (la.size() != lb.size()) return true;
  for (const auto& [k, v] : la) {
    auto it = lb.find(k);
    if (it == lb.end() || it->second != v) return true;
  }
  const auto& sa = a.status();
  const auto& sb = b.status();
  if (sa.allocatable_size() != sb.allocatable_size()) return true;
  for (const auto& [k, v] : sa.allocatable()) {
    auto it = sb.allocatable().find(k);
    if (it == sb.allocatable().end() || !MessageDifferencer::Equals(it->second, v)) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- TaskPool

TaskPool::TaskPool(int threads) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    threads_.emplace_back([this] {
      std::unique_lock lock(mu_);
      for (;;) {
        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping and drained
        auto task = std::move(tasks_.front());
        tasks_.pop_front();
        ++running_;
        lock.unlock();
        task();
        lock.lock();
        --running_;
        if (tasks_.empty() && running_ == 0) idle_cv_.notify_all();
      }
    });
  }
}

TaskPool::~TaskPool() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    t.join();
}

void TaskPool::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void TaskPool::drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return tasks_.empty() && running_ == 0; });
}

// ---------------------------------------------------------------- Scheduler

Scheduler::Scheduler(client::Client& client, SchedulerOptions options)
    : client_(client),
      options_(std::move(options)),
      cache_(options_.assumed_ttl),
      queue_(options_.queue),
      framework_(options_.framework),
      events_(client_, client::EventSource{.component = options_.scheduler_name,
                                           .instance = options_.instance}),
      pool_(options_.bind_workers) {
  framework_.setPodNominator(&nominator_);
  plugins::registerDefaultPlugins(framework_,
                                  options_.default_spread_constraints ? spread_selector_ : nullptr);
  framework_.addPlugin(std::make_shared<DefaultBinder>(client_));
}

Scheduler::~Scheduler() {
  queue_.close();
  pool_.drain();
}

bool Scheduler::responsibleFor(const Pod& pod) const {
  const std::string& name = pod.spec().scheduler_name();
  return name.empty() ? options_.scheduler_name == "default-scheduler"
                      : name == options_.scheduler_name;
}

void Scheduler::onNodeAdd(const NodePtr& node) {
  cache_.addNode(node);
  queue_.onEvent(ClusterEvent::kNodeAdd);
}

void Scheduler::onNodeUpdate(const NodePtr& old_node, const NodePtr& node) {
  cache_.updateNode(node);
  if (!old_node || schedulingRelevantNodeChange(*old_node, *node)) {
    queue_.onEvent(ClusterEvent::kNodeUpdate);
  }
}

void Scheduler::onNodeDelete(const NodePtr& node) {
  cache_.removeNode(node->metadata().name());
}

void Scheduler::onPodAdd(const PodPtr& pod) {
  const std::string key = podKey(*pod);
  if (!pod->spec().node_name().empty()) {
    queue_.remove(key);
    nominator_.remove(key);
    cache_.addPod(pod);
    queue_.onEvent(ClusterEvent::kAssignedPodAdd);
    return;
  }
  if (!responsibleFor(*pod) || pod->metadata().has_deletion_timestamp()) return;
  nominator_.onPendingPod(pod);
  queue_.add(pod);
}

void Scheduler::onPodUpdate(const PodPtr& old_pod, const PodPtr& pod) {
  const std::string key = podKey(*pod);
  if (!pod->spec().node_name().empty()) {
    queue_.remove(key);
    nominator_.remove(key);
    const bool newly_bound = !old_pod || old_pod->spec().node_name().empty();
    cache_.updatePod(pod);
    queue_.onEvent(newly_bound ? ClusterEvent::kAssignedPodAdd : ClusterEvent::kAssignedPodUpdate);
    return;
  }
  if (!responsibleFor(*pod)) return;
  if (pod->metadata().has_deletion_timestamp()) {
    queue_.remove(key);
    nominator_.remove(key);
    return;
  }
  if (!old_pod || old_pod->status().nominated_node_name() != pod->status().nominated_node_name()) {
    nominator_.onPendingPod(pod);
  }
  if (old_pod && !schedulingRelevantPodChange(*old_pod, *pod)) return;
  queue_.update(pod);
}

void Scheduler::onPodDelete(const PodPtr& pod) {
  const std::string key = podKey(*pod);
  queue_.remove(key);
  nominator_.remove(key);
  if (cache_.nodeOf(key)) {
    cache_.removePod(key);
    queue_.onEvent(ClusterEvent::kAssignedPodDelete);
  }
}

bool Scheduler::scheduleOne(bool block) {
  QueuedPodInfo info;
  if (block ? !queue_.pop(info) : !queue_.tryPop(info)) return false;
  const PodInfo& pod = *info.pod;
  // Bound meanwhile (by us in an earlier attempt, or by someone else): never bind twice.
  if (auto node = cache_.nodeOf(pod.key); node && !cache_.isAssumed(pod.key)) {
    queue_.done(pod.key);
    return true;
  }
  cache_.updateSnapshot(snapshot_);
  auto state = std::make_shared<CycleState>();
  ScheduleResult result = framework_.schedulePod(*state, pod, snapshot_);
  if (!result.status.ok()) {
    if (!result.status.isRejected()) {
      handleFailure(std::move(info), result.status, result.status.message(), false);
      return true;
    }
    std::string nominated;
    if (framework_.hasPostFilter()) {
      PostFilterResult pf;
      Status post =
          framework_.runPostFilter(*state, pod, snapshot_, result.diagnosis.node_statuses, pf);
      if (post.ok() && !pf.nominated_node.empty()) {
        nominated = pf.nominated_node;
        nominator_.nominate(info.pod, nominated);
        preempt(pod, pf);
      } else if (!post.message().empty()) {
        result.diagnosis.post_filter_msg = post.message();
      }
    }
    info.unschedulable_plugins = result.diagnosis.unschedulable_plugins;
    const std::string message = fitErrorMessage(snapshot_.size(), result.diagnosis);
    const PodPtr pod_ptr = pod.pod;
    failed_.fetch_add(1);
    queue_.addUnschedulable(std::move(info), true);
    events_.record(client::resourceTypeOf<Pod>(), *pod_ptr, "Warning", "FailedScheduling", message,
                   "Scheduling");
    pool_.post([this, pod_ptr, message, nominated] {
      setUnschedulableCondition(*pod_ptr, "Unschedulable", message, nominated);
    });
    return true;
  }

  // Assume, reserve and permit on this thread; bind on the pool.
  auto assumed = std::make_shared<Pod>(*pod.pod);
  assumed->mutable_spec()->set_node_name(result.node);
  try {
    cache_.assumePod(assumed);
    nominator_.remove(pod.key);
  } catch (const CacheError& e) {
    handleFailure(std::move(info), Status::error(e.what()), e.what(), false);
    return true;
  }
  Status reserve = framework_.runReserve(*state, pod, result.node);
  if (!reserve.ok()) {
    framework_.runUnreserve(*state, pod, result.node);
    cache_.forgetPod(pod.key);
    handleFailure(std::move(info), reserve, reserve.message(), reserve.isRejected());
    return true;
  }
  Status permit = framework_.runPermit(*state, pod, result.node);
  if (!permit.ok() && permit.code() != Code::kWait) {
    framework_.runUnreserve(*state, pod, result.node);
    cache_.forgetPod(pod.key);
    handleFailure(std::move(info), permit, permit.message(), permit.isRejected());
    return true;
  }
  pool_.post([this, state, info = std::move(info), node = result.node]() mutable {
    bindingCycle(state, std::move(info), node);
  });
  return true;
}

void Scheduler::bindingCycle(std::shared_ptr<CycleState> state, QueuedPodInfo info,
                             std::string node) {
  const PodInfo& pod = *info.pod;
  Status s = framework_.waitOnPermit(pod);
  if (s.ok()) s = framework_.runBind(*state, pod, node);
  if (!s.ok()) {
    bind_errors_.fetch_add(1);
    framework_.runUnreserve(*state, pod, node);
    try {
      cache_.forgetPod(pod.key);
    } catch (const CacheError&) {
      // The informer already confirmed or removed it.
    }
    const std::string message = "Binding rejected: " + s.message();
    const PodPtr pod_ptr = pod.pod;
    queue_.addUnschedulable(std::move(info), s.isRejected());
    events_.record(client::resourceTypeOf<Pod>(), *pod_ptr, "Warning", "FailedScheduling", message,
                   "Scheduling");
    return;
  }
  cache_.finishBinding(pod.key);
  scheduled_.fetch_add(1);
  const PodPtr pod_ptr = pod.pod;
  queue_.done(pod.key);
  if (options_.emit_scheduled_events) {
    events_.record(client::resourceTypeOf<Pod>(), *pod_ptr, "Normal", "Scheduled",
                   "Successfully assigned " + podKey(*pod_ptr) + " to " + node, "Binding");
  }
}

void Scheduler::handleFailure(QueuedPodInfo info, const Status& status, const std::string& message,
                              bool unschedulable) {
  failed_.fetch_add(1);
  const PodPtr pod = info.pod->pod;
  queue_.addUnschedulable(std::move(info), unschedulable);
  (void)status;
  events_.record(client::resourceTypeOf<Pod>(), *pod, "Warning", "FailedScheduling", message,
                 "Scheduling");
}

void Scheduler::preempt(const PodInfo& pod, const PostFilterResult& result) {
  for (const PodPtr& victim : result.victims) {
    try {
      client::remove<Pod>(client_, victim->metadata().namespace_(), victim->metadata().name());
      events_.record(
          client::resourceTypeOf<Pod>(), *victim, "Normal", "Preempted",
          "Preempted by pod " + pod.pod->metadata().uid() + " on node " + result.nominated_node,
          "Preempting");
    } catch (const client::ApiError& e) {
      if (!e.isNotFound()) {
        std::fprintf(stderr, "scheduler: preempting %s for %s: %s\n", podKey(*victim).c_str(),
                     pod.key.c_str(), e.what());
      }
    }
  }
}

void Scheduler::setUnschedulableCondition(const Pod& pod, const std::string& reason,
                                          const std::string& message,
                                          const std::string& nominated) {
  api::Value status = api::Value::object();
  api::Value condition = api::Value::object();
  condition.set("type", api::Value::string("PodScheduled"));
  condition.set("status", api::Value::string("False"));
  condition.set("reason", api::Value::string(reason));
  condition.set("message", api::Value::string(message));
  condition.set("lastTransitionTime", api::Value::string(api::formatRfc3339(api::now())));
  api::Value conditions = api::Value::array();
  conditions.push(std::move(condition));
  status.set("conditions", std::move(conditions));
  if (!nominated.empty()) status.set("nominatedNodeName", api::Value::string(nominated));
  api::Value body = api::Value::object();
  body.set("status", std::move(status));
  try {
    client_.patch(client::resourceTypeOf<Pod>(), pod.metadata().namespace_(), pod.metadata().name(),
                  client::PatchType::kStrategicMerge, api::writeJson(body), {}, "status");
  } catch (const client::ApiError& e) {
    if (!e.isNotFound()) {
      std::fprintf(stderr, "scheduler: condition of %s: %s\n", podKey(pod).c_str(), e.what());
    }
  }
}

void Scheduler::run(std::stop_token stop) {
  std::jthread housekeeping([this](std::stop_token st) {
    using namespace std::chrono_literals;
    int ticks = 0;
    std::mutex m;
    std::condition_variable_any cv;
    while (!st.stop_requested()) {
      {
        std::unique_lock lock(m);
        cv.wait_for(lock, st, 1s, [] { return false; });
      }
      if (st.stop_requested()) break;
      queue_.flushBackoff();
      if (++ticks % 30 == 0) queue_.flushUnschedulableLeftovers();
      if (!cache_.cleanupExpired().empty()) queue_.onEvent(ClusterEvent::kAssignedPodDelete);
    }
  });
  std::stop_callback on_stop(stop, [this] { queue_.close(); });
  while (!stop.stop_requested() && scheduleOne(true)) {
  }
  housekeeping.request_stop();
}

}  // namespace skiff::scheduler
