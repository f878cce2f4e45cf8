#include "scheduler/framework.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>

namespace skiff::scheduler {

std::string_view codeName(Code code) {
  switch (code) {
    case Code::kSuccess:
      return "Success";
    case Code::kError:
      return "Error";
    case Code::kUnschedulable:
      return "Unschedulable";
    case Code::kUnschedulableAndUnresolvable:
      return "UnschedulableAndUnresolvable";
    case Code::kWait:
      return "Wait";
    case Code::kSkip:
      return "Skip";
  }
  return "Unknown";
}

std::string Status::message() const {
  std::string out;
  for (const std::string& r : reasons()) {
    if (!out.empty()) out += ", ";
    out += r;
  }
  return out;
}

CycleState CycleState::clone() const {
  CycleState copy;
  copy.data_.reserve(data_.size());
  for (const auto& [key, data] : data_)
    copy.data_.emplace_back(key, data ? data->clone() : nullptr);
  copy.skip_filter = skip_filter;
  copy.skip_score = skip_score;
  return copy;
}

void defaultNormalizeScore(int64_t max, bool reverse, std::vector<int64_t>& scores) {
  int64_t highest = 0;
  for (int64_t s : scores)
    highest = std::max(highest, s);
  if (highest == 0) {
    if (reverse) std::fill(scores.begin(), scores.end(), max);
    return;
  }
  for (int64_t& s : scores) {
    s = max * s / highest;
    if (reverse) s = max - s;
  }
}

// ---------------------------------------------------------------- Parallelizer

Parallelizer::Parallelizer(int parallelism) {
  for (int i = 1; i < parallelism; ++i)
    workers_.emplace_back([this] { work(); });
}

Parallelizer::~Parallelizer() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    t.join();
}

void Parallelizer::runChunks(const ChunkFn& fn, size_t n, size_t chunk) {
  for (;;) {
    if (stopped_.load(std::memory_order_relaxed)) return;
    const size_t begin = next_.fetch_add(chunk);
    if (begin >= n) return;
    const size_t end = std::min(n, begin + chunk);
    if (!fn(begin, end)) stopped_.store(true, std::memory_order_relaxed);
  }
}

void Parallelizer::work() {
  uint64_t seen = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || job_ != seen; });
    if (stop_) return;
    seen = job_;
    if (fn_ == nullptr) continue;  // that job finished before this worker woke
    const auto* fn = fn_;
    const size_t n = n_;
    const size_t chunk = chunk_;
    ++active_;
    lock.unlock();
    runChunks(*fn, n, chunk);
    lock.lock();
    if (--active_ == 0) done_cv_.notify_all();
  }
}

void Parallelizer::forChunks(size_t n, size_t chunk, size_t min_parallel, const ChunkFn& fn) {
  if (n == 0) return;
  chunk = std::max<size_t>(1, chunk);
  if (workers_.empty() || n < std::max(min_parallel, chunk + 1)) {
    for (size_t begin = 0; begin < n; begin += chunk) {
      if (!fn(begin, std::min(n, begin + chunk))) return;
    }
    return;
  }
  {
    std::lock_guard lock(mu_);
    fn_ = &fn;
    n_ = n;
    chunk_ = chunk;
    next_.store(0);
    stopped_.store(false);
    ++job_;
  }
  cv_.notify_all();
  runChunks(fn, n, chunk);
  std::unique_lock lock(mu_);
  // Workers that have not picked the job up yet would find nothing left; wait for the busy ones.
  done_cv_.wait(lock, [&] { return active_ == 0; });
  fn_ = nullptr;
  n_ = 0;
}

void Parallelizer::until(size_t n, const std::function<void(size_t)>& fn) {
  const size_t chunk = std::max<size_t>(1, static_cast<size_t>(std::sqrt(static_cast<double>(n))));
  forChunks(n, chunk, 16, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i)
      fn(i);
    return true;
  });
}

// ---------------------------------------------------------------- messages and sampling

std::string fitErrorMessage(size_t num_all_nodes, const Diagnosis& diagnosis) {
  std::string msg = "0/" + std::to_string(num_all_nodes) + " nodes are available:";
  if (!diagnosis.pre_filter_msg.empty()) {
    msg += " " + diagnosis.pre_filter_msg + ".";
  } else {
    std::map<std::string, int> histogram;
    for (const auto& [node, status] : diagnosis.node_statuses) {
      for (const std::string& r : status.reasons())
        ++histogram[r];
    }
    std::vector<std::string> parts;
    for (const auto& [reason, count] : histogram) {
      parts.push_back(std::to_string(count) + " " + reason);
    }
    std::sort(parts.begin(), parts.end());
    if (!parts.empty()) {
      msg += " ";
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i) msg += ", ";
        msg += parts[i];
      }
      msg += ".";
    }
  }
  if (!diagnosis.post_filter_msg.empty()) msg += " " + diagnosis.post_filter_msg;
  return msg;
}

size_t numFeasibleNodesToFind(size_t num_all_nodes, int32_t percentage) {
  constexpr size_t kMinFeasibleNodes = 100;
  constexpr int64_t kMinPercentage = 5;
  constexpr int64_t kBasePercentage = 50;
  if (num_all_nodes < kMinFeasibleNodes || percentage >= 100) return num_all_nodes;
  int64_t adaptive = percentage;
  if (adaptive <= 0) {
    adaptive = kBasePercentage - static_cast<int64_t>(num_all_nodes) / 125;
    if (adaptive < kMinPercentage) adaptive = kMinPercentage;
  }
  const size_t n = num_all_nodes * static_cast<size_t>(adaptive) / 100;
  return std::max(n, kMinFeasibleNodes);
}

// ---------------------------------------------------------------- Framework

Framework::Framework(FrameworkOptions options)
    : options_(std::move(options)), parallelizer_(std::max(1, options_.parallelism)) {}

void Framework::addPlugin(PluginPtr plugin, int32_t weight) {
  Plugin* p = plugin.get();
  if (auto* x = dynamic_cast<PreFilterPlugin*>(p)) pre_filter_.push_back(x);
  if (auto* x = dynamic_cast<FilterPlugin*>(p)) filter_.push_back(x);
  if (auto* x = dynamic_cast<PostFilterPlugin*>(p)) post_filter_.push_back(x);
  if (auto* x = dynamic_cast<PreScorePlugin*>(p)) pre_score_.push_back(x);
  if (auto* x = dynamic_cast<ScorePlugin*>(p)) score_.emplace_back(x, weight);
  if (auto* x = dynamic_cast<ReservePlugin*>(p)) reserve_.push_back(x);
  if (auto* x = dynamic_cast<PermitPlugin*>(p)) permit_.push_back(x);
  if (auto* x = dynamic_cast<BindPlugin*>(p)) bind_.push_back(x);
  plugins_.push_back(std::move(plugin));
}

Status Framework::runPreFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot) {
  for (PreFilterPlugin* p : pre_filter_) {
    Status s = p->preFilter(state, pod, snapshot);
    if (s.isSkip()) {
      state.skip_filter.insert(std::string(p->name()));
      continue;
    }
    if (!s.ok()) return s.withPlugin(p->name());
  }
  return {};
}

Status Framework::runPreFilterAddPod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                                     const NodeInfo& node) const {
  for (PreFilterPlugin* p : pre_filter_) {
    if (state.skip_filter.contains(p->name())) continue;
    Status s = p->addPod(state, pod, other, node);
    if (!s.ok()) return s.withPlugin(p->name());
  }
  return {};
}

Status Framework::runPreFilterRemovePod(CycleState& state, const PodInfo& pod, const PodInfo& other,
                                        const NodeInfo& node) const {
  for (PreFilterPlugin* p : pre_filter_) {
    if (state.skip_filter.contains(p->name())) continue;
    Status s = p->removePod(state, pod, other, node);
    if (!s.ok()) return s.withPlugin(p->name());
  }
  return {};
}

namespace {

// Nodes per chunk of the parallel Filter and Score loops, and how far ahead the loops prefetch
// a node: the NodeInfos are scattered over the heap and their first lines miss on every cycle.
constexpr size_t kFilterChunk = 64;
constexpr size_t kScoreChunk = 64;
constexpr size_t kPrefetchAhead = 4;

void prefetchNode(const NodeInfo& node) {
  // The shared_ptr control block (16 bytes before the object: make_shared), the node pointer,
  // the flags, the pod list and NodeInfo::amounts() (136 bytes, three lines at most), then the
  // hostname and zone values.
  const char* p = reinterpret_cast<const char*>(&node);
  __builtin_prefetch(p - 16);
  __builtin_prefetch(p + 48);
  __builtin_prefetch(p + 112);
  __builtin_prefetch(p + 176);  // the topology label values
}

Status runFilters(const std::vector<const FilterPlugin*>& filters, const CycleState& state,
                  const PodInfo& pod, const NodeInfo& node) {
  for (const FilterPlugin* p : filters) {
    Status s = p->filter(state, pod, node);
    if (!s.ok()) {
      // A plugin error is an error, whatever the node.
      return s.withPlugin(p->name());
    }
  }
  return {};
}

}  // namespace

std::vector<const FilterPlugin*> Framework::activeFilters(const CycleState& state) const {
  std::vector<const FilterPlugin*> active;
  active.reserve(filter_.size());
  for (const FilterPlugin* p : filter_) {
    if (!state.skip_filter.contains(p->name())) active.push_back(p);
  }
  return active;
}

Status Framework::runFilter(const CycleState& state, const PodInfo& pod,
                            const NodeInfo& node) const {
  return runFilters(activeFilters(state), state, pod, node);
}

Status Framework::runFilterWithNominatedPods(
    const CycleState& state, const PodInfo& pod, const NodeInfo& node,
    const NominatedPods* nominated, const std::vector<const FilterPlugin*>* filters) const {
  if (nominated != nullptr && !nominated->empty()) {
    auto it = nominated->find(node.name());
    if (it != nominated->end()) {
      const int32_t priority = podPriority(*pod.pod);
      std::optional<CycleState> with;
      std::optional<NodeInfo> trial;
      for (const PodInfoPtr& other : it->second) {
        if (other->key == pod.key || podPriority(*other->pod) < priority) continue;
        if (!with) {
          with.emplace(state.clone());
          trial.emplace(node);
        }
        trial->addPod(other);
        Status s = runPreFilterAddPod(*with, pod, *other, *trial);
        if (!s.ok()) return s;
      }
      if (with) {
        Status s = runFilter(*with, pod, *trial);
        if (!s.ok()) return s;
      }
    }
  }
  return filters ? runFilters(*filters, state, pod, node) : runFilter(state, pod, node);
}

Status Framework::runPostFilter(CycleState& state, const PodInfo& pod, const Snapshot& snapshot,
                                const NodeStatusMap& statuses, PostFilterResult& result) {
  Status last = Status::unschedulable("");
  for (PostFilterPlugin* p : post_filter_) {
    Status s = p->postFilter(state, pod, snapshot, statuses, *this, result);
    if (s.ok() || s.code() == Code::kError) return s.withPlugin(p->name());
    last = s.withPlugin(p->name());
  }
  return last;
}

Status Framework::runScore(CycleState& state, const PodInfo& pod,
                           std::span<const NodeInfoPtr> feasible, const Snapshot& snapshot,
                           std::vector<int64_t>& totals) {
  for (PreScorePlugin* p : pre_score_) {
    Status s = p->preScore(state, pod, feasible, snapshot);
    if (s.isSkip()) {
      state.skip_score.insert(std::string(p->name()));
      continue;
    }
    if (!s.ok()) return s.withPlugin(p->name());
  }
  std::vector<std::pair<const ScorePlugin*, int32_t>> active;
  active.reserve(score_.size());
  for (const auto& [plugin, weight] : score_) {
    if (!state.skip_score.contains(plugin->name())) active.emplace_back(plugin, weight);
  }
  const size_t n = feasible.size();
  totals.assign(n, 0);
  // One pass over the nodes running every plugin on each (as kube-scheduler's RunScorePlugins):
  // each node is brought into cache once, and one parallel hand-off serves all plugins.
  // scores[k * n + i]: plugin k's score of feasible node i.
  std::vector<int64_t> scores(active.size() * n);
  std::mutex error_mu;
  Status error;
  parallelizer_.forChunks(n, kScoreChunk, options_.min_parallel_nodes, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      if (i + kPrefetchAhead < e) prefetchNode(*feasible[i + kPrefetchAhead]);
      const NodeInfo& node = *feasible[i];
      for (size_t k = 0; k < active.size(); ++k) {
        int64_t value = 0;
        Status st = active[k].first->score(state, pod, node, value);
        if (!st.ok()) {
          std::lock_guard lock(error_mu);
          error = st.withPlugin(active[k].first->name());
          return false;
        }
        scores[k * n + i] = value;
      }
    }
    return true;
  });
  if (!error.ok()) return error;
  std::vector<int64_t> plugin_scores(n);
  for (size_t k = 0; k < active.size(); ++k) {
    const ScorePlugin* p = active[k].first;
    const int32_t weight = active[k].second;
    std::copy_n(scores.begin() + static_cast<ptrdiff_t>(k * n), n, plugin_scores.begin());
    Status st = p->normalizeScore(state, pod, plugin_scores);
    if (!st.ok()) return st.withPlugin(p->name());
    for (size_t i = 0; i < n; ++i) {
      if (plugin_scores[i] < 0 || plugin_scores[i] > kMaxNodeScore) {
        return Status::error("plugin " + std::string(p->name()) + " returns an invalid score " +
                             std::to_string(plugin_scores[i]) +
                             ", it should in the range of [0, 100] " + "after normalizing")
            .withPlugin(p->name());
      }
      totals[i] += plugin_scores[i] * weight;
    }
  }
  return {};
}

ScheduleResult Framework::schedulePod(CycleState& state, const PodInfo& pod,
                                      const Snapshot& snapshot) {
  ScheduleResult result;
  const auto& nodes = snapshot.nodes();
  if (nodes.empty()) {
    result.status = Status::unschedulable("no nodes available to schedule pods");
    result.diagnosis.pre_filter_msg = "no nodes available to schedule pods";
    return result;
  }
  Status pre = runPreFilter(state, pod, snapshot);
  if (!pre.ok()) {
    result.status = pre;
    if (pre.isRejected()) {
      result.diagnosis.pre_filter_msg = pre.message();
      result.diagnosis.unschedulable_plugins.insert(std::string(pre.plugin()));
      for (const auto& n : nodes)
        result.diagnosis.node_statuses[n->name()] = pre;
    }
    return result;
  }

  const NominatedPods nominated = nominator_ ? nominator_->nominatedPods() : NominatedPods{};

  // A pod nominated by an earlier preemption tries that node first (kube-scheduler's
  // evaluateNominatedNode): the room was made for it.
  if (const std::string& node_name = pod.pod->status().nominated_node_name(); !node_name.empty()) {
    if (const NodeInfo* node = snapshot.get(node_name);
        node != nullptr && runFilterWithNominatedPods(state, pod, *node, &nominated).ok()) {
      result.node = node_name;
      result.evaluated_nodes = 1;
      result.feasible_nodes = 1;
      return result;
    }
  }

  // Filter, in parallel, from a rotating start, until enough feasible nodes are found.
  const size_t all = nodes.size();
  const size_t want = numFeasibleNodesToFind(all, options_.percentage_of_nodes_to_score);
  const std::vector<const FilterPlugin*> filters = activeFilters(state);
  // Per node (in evaluation order): kept as feasible or not. Rejections are rare next to the
  // nodes looked at, so their statuses go to a list instead of a Status slot per node.
  // 0: not looked at, 1: kept, 2: looked at (rejected, or feasible beyond `want`).
  enum : uint8_t { kUnseen = 0, kKept = 1, kSeen = 2 };
  std::vector<uint8_t> verdict(all, kUnseen);
  std::vector<std::pair<size_t, Status>> rejected;
  std::mutex rejected_mu;
  // The one counter the filtering threads write, on a cache line of its own: next to the
  // closure's captures it made every node's reads of them miss on the other core.
  struct alignas(64) Counter {
    std::atomic<size_t> value{0};
  } found;
  const size_t start = next_start_index_ % all;
  const bool any_nominated = !nominated.empty();
  // Nodes [b, e) in evaluation order; false once enough feasible nodes are found.
  auto filterRange = [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) {
      if (found.value.load(std::memory_order_relaxed) >= want) return false;
      size_t idx = start + i;
      if (idx >= all) idx -= all;
      if (i + kPrefetchAhead < e) {
        size_t ahead = idx + kPrefetchAhead;
        if (ahead >= all) ahead -= all;
        prefetchNode(*nodes[ahead]);
      }
      const NodeInfo& node = *nodes[idx];
      Status s = any_nominated ? runFilterWithNominatedPods(state, pod, node, &nominated, &filters)
                               : runFilters(filters, state, pod, node);
      verdict[i] = kSeen;
      if (s.ok()) {
        if (found.value.fetch_add(1, std::memory_order_relaxed) < want) verdict[i] = kKept;
      } else {
        std::lock_guard lock(rejected_mu);
        rejected.emplace_back(i, std::move(s));
      }
    }
    return found.value.load(std::memory_order_relaxed) < want;
  };
  // The first nodes on this thread: with cheap filters and most nodes feasible, `want` nodes
  // are found before a worker would have woken. Only what is left goes to the workers.
  const size_t inline_nodes = std::min(all, options_.min_parallel_nodes);
  bool more = true;
  for (size_t b = 0; b < inline_nodes && more; b += kFilterChunk)
    more = filterRange(b, std::min(inline_nodes, b + kFilterChunk));
  if (more && inline_nodes < all) {
    parallelizer_.forChunks(all - inline_nodes, kFilterChunk, 0, [&](size_t b, size_t e) {
      return filterRange(inline_nodes + b, inline_nodes + e);
    });
  }
  std::sort(rejected.begin(), rejected.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [i, status] : rejected) {
    if (status.code() == Code::kError) {
      result.status = std::move(status);
      return result;
    }
  }
  result.diagnosis.node_statuses.reserve(rejected.size());
  for (auto& [i, status] : rejected) {
    result.diagnosis.unschedulable_plugins.insert(std::string(status.plugin()));
    result.diagnosis.node_statuses[nodes[(start + i) % all]->name()] = std::move(status);
  }
  std::vector<NodeInfoPtr> feasible;
  feasible.reserve(std::min(want, all));
  result.evaluated_nodes = 0;
  for (size_t i = 0; i < all; ++i) {
    if (verdict[i] == kKept) feasible.push_back(nodes[(start + i) % all]);
    if (verdict[i] != kUnseen) ++result.evaluated_nodes;
  }
  next_start_index_ = (start + result.evaluated_nodes) % all;
  result.feasible_nodes = feasible.size();
  if (feasible.empty()) {
    result.status = Status::unschedulable("no node fits");
    return result;
  }
  if (feasible.size() == 1) {
    result.node = feasible[0]->name();
    return result;
  }

  std::vector<int64_t> totals;
  Status s = runScore(state, pod, feasible, snapshot, totals);
  if (!s.ok()) {
    result.status = s;
    return result;
  }
  // The highest total; among equals, each has the same chance (reservoir sampling).
  size_t best = 0;
  int ties = 1;
  for (size_t i = 1; i < totals.size(); ++i) {
    if (totals[i] > totals[best]) {
      best = i;
      ties = 1;
    } else if (totals[i] == totals[best]) {
      ++ties;
      rng_state_ ^= rng_state_ << 13;
      rng_state_ ^= rng_state_ >> 7;
      rng_state_ ^= rng_state_ << 17;
      if (rng_state_ % static_cast<uint64_t>(ties) == 0) best = i;
    }
  }
  result.node = feasible[best]->name();
  return result;
}

Status Framework::runReserve(CycleState& state, const PodInfo& pod, const std::string& node) {
  for (ReservePlugin* p : reserve_) {
    Status s = p->reserve(state, pod, node);
    if (!s.ok()) return s.withPlugin(p->name());
  }
  return {};
}

void Framework::runUnreserve(CycleState& state, const PodInfo& pod, const std::string& node) {
  for (auto it = reserve_.rbegin(); it != reserve_.rend(); ++it)
    (*it)->unreserve(state, pod, node);
}

Status Framework::runPermit(CycleState& state, const PodInfo& pod, const std::string& node) {
  WaitingPod waiting;
  std::chrono::milliseconds longest{0};
  for (PermitPlugin* p : permit_) {
    std::chrono::milliseconds timeout{0};
    Status s = p->permit(state, pod, node, timeout);
    if (s.code() == Code::kWait) {
      waiting.pending.insert(std::string(p->name()));
      longest = std::max(longest, std::min(timeout, std::chrono::milliseconds(15 * 60 * 1000)));
      continue;
    }
    if (!s.ok()) return s.withPlugin(p->name());
  }
  if (waiting.pending.empty()) return {};
  waiting.deadline = std::chrono::steady_clock::now() + longest;
  std::lock_guard lock(waiting_mu_);
  waiting_[pod.key] = std::move(waiting);
  return Status::wait();
}

Status Framework::waitOnPermit(const PodInfo& pod) {
  std::unique_lock lock(waiting_mu_);
  auto it = waiting_.find(pod.key);
  if (it == waiting_.end()) return {};
  const auto deadline = it->second.deadline;
  waiting_cv_.wait_until(lock, deadline, [&] { return waiting_.at(pod.key).outcome.has_value(); });
  it = waiting_.find(pod.key);
  Status out = it->second.outcome
                   ? *it->second.outcome
                   : Status::unschedulable("rejected due to timeout after waiting at permit");
  waiting_.erase(it);
  return out;
}

bool Framework::allowWaitingPod(const std::string& key, std::string_view plugin) {
  std::lock_guard lock(waiting_mu_);
  auto it = waiting_.find(key);
  if (it == waiting_.end() || it->second.outcome) return false;
  auto p = it->second.pending.find(plugin);
  if (p == it->second.pending.end()) return false;
  it->second.pending.erase(p);
  if (it->second.pending.empty()) {
    it->second.outcome = Status::success();
    waiting_cv_.notify_all();
  }
  return true;
}

bool Framework::rejectWaitingPod(const std::string& key, const std::string& message) {
  std::lock_guard lock(waiting_mu_);
  auto it = waiting_.find(key);
  if (it == waiting_.end() || it->second.outcome) return false;
  it->second.outcome = Status::unschedulable(message);
  waiting_cv_.notify_all();
  return true;
}

Status Framework::runBind(CycleState& state, const PodInfo& pod, const std::string& node) {
  for (BindPlugin* p : bind_) {
    Status s = p->bind(state, pod, node);
    if (s.isSkip()) continue;
    return s.withPlugin(p->name());
  }
  return Status::error("no bind plugin bound pod " + pod.key);
}

}  // namespace skiff::scheduler
