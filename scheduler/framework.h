#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "scheduler/cache.h"
#include "scheduler/node_info.h"

// The scheduling framework (kube-scheduler's framework): plugins at the extension points
// PreFilter, Filter, PostFilter, PreScore, Score (with NormalizeScore), Reserve/Unreserve, Permit
// and Bind, run by one Framework over a Snapshot of the nodes.
//
// Threading: Filter and Score run in parallel across nodes, so filter(), score() and
// normalizeScore() must only read the CycleState and the NodeInfo. The other extension points run
// on the scheduling (or binding) thread of one pod.

namespace skiff::scheduler {

enum class Code {
  kSuccess,
  kError,                         // something went wrong; the pod is retried with backoff
  kUnschedulable,                 // this node does not fit now; preemption may help
  kUnschedulableAndUnresolvable,  // this node does not fit and preemption cannot help
  kWait,                          // Permit: hold the pod until allowed or rejected
  kSkip,                          // PreFilter/PreScore: nothing to do; Bind: not mine
};
std::string_view codeName(Code code);

class Status {
 public:
  Status() = default;
  Status(Code code, std::vector<std::string> reasons)
      : code_(code),
        reasons_(reasons.empty()
                     ? nullptr
                     : std::make_shared<const std::vector<std::string>>(std::move(reasons))) {}

  static Status success() { return {}; }
  static Status error(std::string message) { return {Code::kError, {std::move(message)}}; }
  static Status unschedulable(std::string reason) {
    return {Code::kUnschedulable, {std::move(reason)}};
  }
  static Status unresolvable(std::string reason) {
    return {Code::kUnschedulableAndUnresolvable, {std::move(reason)}};
  }
  static Status skip() { return {Code::kSkip, {}}; }
  static Status wait() { return {Code::kWait, {}}; }

  Code code() const { return code_; }
  bool ok() const { return code_ == Code::kSuccess; }
  bool isSkip() const { return code_ == Code::kSkip; }
  bool isRejected() const {
    return code_ == Code::kUnschedulable || code_ == Code::kUnschedulableAndUnresolvable;
  }
  const std::vector<std::string>& reasons() const {
    static const std::vector<std::string> kNone;
    return reasons_ ? *reasons_ : kNone;
  }
  // The reasons joined with ", ".
  std::string message() const;
  // The plugin that returned this status (its name(), which outlives the status).
  std::string_view plugin() const { return plugin_; }
  Status& withPlugin(std::string_view plugin) {
    plugin_ = plugin;
    return *this;
  }

 private:
  // Shared and immutable: a plugin returns the same rejection for many nodes of a cycle as a
  // copy of one static Status, without building its strings again for each node.
  Code code_ = Code::kSuccess;
  std::shared_ptr<const std::vector<std::string>> reasons_;
  std::string_view plugin_;
};

// Per-plugin data of one scheduling cycle (written in PreFilter/PreScore, read in Filter/Score).
class StateData {
 public:
  virtual ~StateData() = default;
  virtual std::unique_ptr<StateData> clone() const = 0;
};

class CycleState {
 public:
  CycleState() = default;
  CycleState(const CycleState&) = delete;
  CycleState& operator=(const CycleState&) = delete;
  CycleState(CycleState&&) = default;
  CycleState& operator=(CycleState&&) = default;

  void write(const std::string& key, std::unique_ptr<StateData> data) {
    for (auto& [k, d] : data_) {
      if (k == key) {
        d = std::move(data);
        return;
      }
    }
    data_.emplace_back(key, std::move(data));
  }
  // Filter and Score read their plugin's entry on every node: a handful of entries, looked up by
  // a linear scan (no hashing), and the exact type checked with typeid before dynamic_cast.
  template <typename T>
  T* read(const std::string& key) const {
    for (const auto& [k, d] : data_) {
      if (k.size() != key.size() || k != key) continue;
      StateData* p = d.get();
      if (p == nullptr) return nullptr;
      if (typeid(*p) == typeid(T)) return static_cast<T*>(p);
      return dynamic_cast<T*>(p);
    }
    return nullptr;
  }
  // A deep copy (preemption evaluates what-ifs on copies).
  CycleState clone() const;

  // Plugins whose PreFilter / PreScore returned Skip: their Filter / Score are not run.
  std::set<std::string, std::less<>> skip_filter;
  std::set<std::string, std::less<>> skip_score;

 private:
  std::vector<std::pair<std::string, std::unique_ptr<StateData>>> data_;
};

class Framework;

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string_view name() const = 0;
};
using PluginPtr = std::shared_ptr<Plugin>;

class PreFilterPlugin : public virtual Plugin {
 public:
  virtual Status preFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) = 0;
  // PreFilterExtensions: update the state as if `other` were added to / removed from `node`
  // (used by preemption). Plugins whose state does not depend on other pods keep the defaults.
  virtual Status addPod(CycleState& /*state*/, const PodInfo& /*pod*/, const PodInfo& /*other*/,
                        const NodeInfo& /*node*/) const {
    return {};
  }
  virtual Status removePod(CycleState& /*state*/, const PodInfo& /*pod*/, const PodInfo& /*other*/,
                           const NodeInfo& /*node*/) const {
    return {};
  }
};

class FilterPlugin : public virtual Plugin {
 public:
  virtual Status filter(const CycleState& state, const PodInfo& pod,
                        const NodeInfo& node) const = 0;
};

// Node name -> the status of the first Filter that rejected it.
using NodeStatusMap = std::unordered_map<std::string, Status>;

struct PostFilterResult {
  std::string nominated_node;
  std::vector<PodPtr> victims;  // to delete so that the pod fits on nominated_node
};

class PostFilterPlugin : public virtual Plugin {
 public:
  // Called when no node fits. On success `result` nominates a node. The returned status's message
  // is added to the FailedScheduling message ("preemption: ...").
  virtual Status postFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                            const NodeStatusMap& statuses, const Framework& framework,
                            PostFilterResult& result) = 0;
};

class PreScorePlugin : public virtual Plugin {
 public:
  virtual Status preScore(CycleState& state, const PodInfo& pod,
                          std::span<const NodeInfoPtr> feasible, const Snapshot& snapshot) = 0;
};

inline constexpr int64_t kMaxNodeScore = 100;

class ScorePlugin : public virtual Plugin {
 public:
  virtual Status score(const CycleState& state, const PodInfo& pod, const NodeInfo& node,
                       int64_t& score) const = 0;
  // Scales `scores` (one per feasible node, in order) into [0, kMaxNodeScore].
  virtual Status normalizeScore(const CycleState& /*state*/, const PodInfo& /*pod*/,
                                std::vector<int64_t>& /*scores*/) const {
    return {};
  }
};

// The common NormalizeScore helper (helper.DefaultNormalizeScore): scales to [0, max] by the
// largest score; `reverse` turns high into low.
void defaultNormalizeScore(int64_t max, bool reverse, std::vector<int64_t>& scores);

class ReservePlugin : public virtual Plugin {
 public:
  virtual Status reserve(CycleState& state, const PodInfo& pod, const std::string& node) = 0;
  virtual void unreserve(CycleState& state, const PodInfo& pod, const std::string& node) = 0;
};

class PermitPlugin : public virtual Plugin {
 public:
  // Success, a rejection, or Wait with `timeout` set (the pod then waits until
  // Framework::allowWaitingPod / rejectWaitingPod or the timeout, which rejects).
  virtual Status permit(CycleState& state, const PodInfo& pod, const std::string& node,
                        std::chrono::milliseconds& timeout) = 0;
};

class BindPlugin : public virtual Plugin {
 public:
  // Skip passes the pod to the next bind plugin.
  virtual Status bind(CycleState& state, const PodInfo& pod, const std::string& node) = 0;
};

// A tiny pool of worker threads for Filter and Score across nodes.
class Parallelizer {
 public:
  // `parallelism` threads in all, the caller's included (1: everything inline).
  explicit Parallelizer(int parallelism);
  ~Parallelizer();
  Parallelizer(const Parallelizer&) = delete;
  Parallelizer& operator=(const Parallelizer&) = delete;

  // Runs fn(i) for i in [0, n), in chunks, and returns when all are done. One call at a time.
  void until(size_t n, const std::function<void(size_t)>& fn);
  // Runs fn(begin, end) over [0, n) in chunks of `chunk` indexes (the last may be shorter),
  // taken in increasing order by the caller and the workers; returns when all are done. With
  // fewer than `min_parallel` indexes everything runs on the caller: waking a worker costs more
  // than cheap work on a few hundred nodes, above all on a 2-core machine shared with the
  // apiserver. fn may return false to stop: chunks not yet taken are then skipped.
  using ChunkFn = std::function<bool(size_t begin, size_t end)>;
  void forChunks(size_t n, size_t chunk, size_t min_parallel, const ChunkFn& fn);
  int parallelism() const { return static_cast<int>(workers_.size()) + 1; }

 private:
  void work();
  void runChunks(const ChunkFn& fn, size_t n, size_t chunk);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  const ChunkFn* fn_ = nullptr;
  std::atomic<bool> stopped_{false};
  size_t n_ = 0;
  size_t chunk_ = 1;
  std::atomic<size_t> next_{0};
  uint64_t job_ = 0;
  int active_ = 0;
  bool stop_ = false;
};

// Why a pod fits nowhere.
struct Diagnosis {
  NodeStatusMap node_statuses;
  std::set<std::string> unschedulable_plugins;  // that rejected some node (queueing hints)
  std::string pre_filter_msg;                   // PreFilter rejected the pod outright
  std::string post_filter_msg;                  // "preemption: ..."
};

// Kubernetes' FitError message: "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had
// untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/5 nodes are
// available: 5 Preemption is not helpful for scheduling." Reasons are counted over nodes and
// sorted as strings, as kube-scheduler does.
std::string fitErrorMessage(size_t num_all_nodes, const Diagnosis& diagnosis);

// kube-scheduler's numFeasibleNodesToFind: every node below 100 nodes; else `percentage` of them
// (0: adaptive, 50 - nodes/125 with a floor of 5), and never fewer than 100.
size_t numFeasibleNodesToFind(size_t num_all_nodes, int32_t percentage);

// Pods that preemption nominated to a node and that are not bound yet, by node name
// (kube-scheduler's PodNominator). Filters count those of equal or higher priority on their node,
// so that the room a preemption made is not taken meanwhile by a less important pod.
using NominatedPods = std::unordered_map<std::string, std::vector<PodInfoPtr>>;

class PodNominator {
 public:
  virtual ~PodNominator() = default;
  // A copy, taken once per scheduling cycle.
  virtual NominatedPods nominatedPods() const = 0;
};

struct FrameworkOptions {
  int32_t percentage_of_nodes_to_score = 0;  // 0: adaptive; 100: every node
  int parallelism = 2;
  // Filter and Score run on the scheduling thread alone for up to this many nodes (Filter: the
  // first this many it looks at); beyond, the workers join. A hand-off costs a futex wake and a
  // context switch, more than cheap plugins spend on hundreds of nodes.
  size_t min_parallel_nodes = 1024;
  std::string profile_name = "default-scheduler";
};

struct ScheduleResult {
  std::string node;  // empty when the pod fits nowhere
  Status status;     // Success; Unschedulable with diagnosis filled; or Error
  Diagnosis diagnosis;
  size_t evaluated_nodes = 0;
  size_t feasible_nodes = 0;
};

class Framework {
 public:
  explicit Framework(FrameworkOptions options = {});

  // Registers `plugin` at every extension point it implements; `weight` applies to Score.
  void addPlugin(PluginPtr plugin, int32_t weight = 1);
  const FrameworkOptions& options() const { return options_; }
  const std::vector<std::pair<ScorePlugin*, int32_t>>& scorePlugins() const { return score_; }

  // The scheduling algorithm: PreFilter, Filter (in parallel, sampled), then PreScore, Score,
  // NormalizeScore and the weighted sum, picking the best node (ties at random). PostFilter is
  // not run here (see runPostFilter).
  ScheduleResult schedulePod(CycleState& state, const PodInfo& pod, const Snapshot& snapshot);

  Status runPreFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot);
  Status runPreFilterAddPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                            const NodeInfo& node) const;
  Status runPreFilterRemovePod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                               const NodeInfo& node) const;
  // Every Filter in order; the first rejection (with its plugin) or Success.
  Status runFilter(const CycleState& state, const PodInfo& pod, const NodeInfo& node) const;
  // The Filter plugins a cycle runs: those whose PreFilter did not return Skip. schedulePod
  // works this out once per pod rather than looking the skipped names up on every node.
  std::vector<const FilterPlugin*> activeFilters(const CycleState& state) const;
  // Filter as kube-scheduler's RunFilterPluginsWithNominatedPods: with the nominated pods of
  // equal or higher priority on `node` added (then without them, so that anti-affinity to a pod
  // that may never come does not help either); `nominated` may be null.
  // `filters`: activeFilters(state), if the caller has it already.
  Status runFilterWithNominatedPods(
      const CycleState& state, const PodInfo& pod, const NodeInfo& node,
      const NominatedPods* nominated,
      const std::vector<const FilterPlugin*>* filters = nullptr) const;
  // Where nominations come from (not owned; null: none).
  void setPodNominator(const PodNominator* nominator) { nominator_ = nominator; }
  Status runPostFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                       const NodeStatusMap& statuses, PostFilterResult& result);
  // Weighted total per feasible node.
  Status runScore(CycleState& state, const PodInfo& pod, std::span<const NodeInfoPtr> feasible,
                  const Snapshot& snapshot, std::vector<int64_t>& totals);
  Status runReserve(CycleState& state, const PodInfo& pod, const std::string& node);
  void runUnreserve(CycleState& state, const PodInfo& pod, const std::string& node);
  // Success, a rejection, or Wait (then call waitOnPermit from the binding cycle).
  Status runPermit(CycleState& state, const PodInfo& pod, const std::string& node);
  Status waitOnPermit(const PodInfo& pod);
  bool allowWaitingPod(const std::string& key, std::string_view plugin);
  bool rejectWaitingPod(const std::string& key, const std::string& message);
  Status runBind(CycleState& state, const PodInfo& pod, const std::string& node);

  bool hasPostFilter() const { return !post_filter_.empty(); }

 private:
  struct WaitingPod {
    std::set<std::string, std::less<>> pending;
    std::chrono::steady_clock::time_point deadline;
    std::optional<Status> outcome;
  };

  FrameworkOptions options_;
  std::vector<PluginPtr> plugins_;
  std::vector<PreFilterPlugin*> pre_filter_;
  std::vector<FilterPlugin*> filter_;
  std::vector<PostFilterPlugin*> post_filter_;
  std::vector<PreScorePlugin*> pre_score_;
  std::vector<std::pair<ScorePlugin*, int32_t>> score_;
  std::vector<ReservePlugin*> reserve_;
  std::vector<PermitPlugin*> permit_;
  std::vector<BindPlugin*> bind_;
  Parallelizer parallelizer_;
  size_t next_start_index_ = 0;
  const PodNominator* nominator_ = nullptr;
  uint64_t rng_state_ = 0x9e3779b97f4a7c15ULL;

  std::mutex waiting_mu_;
  std::condition_variable waiting_cv_;
  std::unordered_map<std::string, WaitingPod> waiting_;
};

}  // namespace skiff::scheduler
