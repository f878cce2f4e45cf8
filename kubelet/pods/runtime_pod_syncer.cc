#include "kubelet/pods/runtime_pod_syncer.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <list>
#include <semaphore>
#include <set>
#include <sstream>
#include <thread>

#include "control/api/codec.h"
#include "control/api/json.h"
#include "kubelet/pods/container_env.h"
#include "kubelet/runtime/container_spec.h"

namespace skiff::kubelet {
namespace fs = std::filesystem;
namespace core = api::core::v1;
using Clock = std::chrono::system_clock;
using Ms = std::chrono::milliseconds;
using api::Value;
using prober::ProbeKind;
using prober::ProbeResult;
using prober::ProbeTracker;

namespace {

int64_t toNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

void setTime(api::meta::v1::Time* t, int64_t ns) {
  t->set_seconds(ns / 1000000000);
}

// Pod UIDs name directories, sandboxes and container ids: keep them to what all of those allow.
void checkUid(const std::string& uid) {
  bool ok = !uid.empty() && uid.size() <= 64 && std::isalnum(static_cast<unsigned char>(uid[0]));
  for (char c : uid)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-');
  if (!ok) {
    throw std::invalid_argument("pod uid \"" + uid +
                                "\": want letters, digits and '-', at most 64 characters");
  }
}

std::string formatDuration(Ms d) {
  const int64_t s = d.count() / 1000;
  if (s < 60) return std::to_string(s) + "s";
  return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void writeFileAtomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, path);
}

std::string str(const Value& v, std::string_view key) {
  const Value* f = v.find(key);
  return f != nullptr && f->isString() ? f->text() : std::string();
}

int64_t num(const Value& v, std::string_view key) {
  const Value* f = v.find(key);
  return f != nullptr && f->isInteger() ? f->asInt() : 0;
}

bool flag(const Value& v, std::string_view key) {
  const Value* f = v.find(key);
  return f != nullptr && f->isBool() && f->asBool();
}

}  // namespace

// A container's end, as lastState shows it.
struct Termination {
  int exit_code = 0;
  std::string reason;
  int64_t started_ns = 0;
  int64_t finished_ns = 0;
  std::string id;
};

struct ContainerRecord {
  std::string name;
  bool init = false;
  std::string id;  // the current runtime container; "" while there is none
  int attempt = 0;
  int restart_count = 0;
  std::optional<Termination> last;
  int64_t backoff_ms = 0;       // the current back-off; 0: none yet
  int64_t last_failure_ns = 0;  // a failed pull/create/start: back-off runs from here
  std::string image_name, image_id;
  bool done = false;  // an init container that exited 0
  // The spec's preStop hook as of the last sync, so that a node shutdown (shutdown(): no pod
  // objects, the agent already stopped) still runs it.
  std::optional<core::LifecycleHandler> pre_stop;
  // Not persisted.
  std::string waiting_reason, waiting_message;
  std::vector<ProbeTracker> probes;
  std::string probes_for;  // the container id `probes` track
};

struct RuntimePodSyncer::PodEntry {
  std::mutex mu;
  std::string uid, ns, name;
  bool sandbox_ready = false;
  bool sandbox_checked = false;  // setUp() ran in this process (it re-finds after a restart)
  // The pod cgroup was written in this process; `cgroup_dirs` are the directories it made.
  bool cgroup_applied = false;
  std::vector<std::string> cgroup_dirs;
  std::string ip, netns_path;
  int64_t start_ns = 0;
  std::string phase;
  // The pod's terminationGracePeriodSeconds as of its last sync, for a shutdown that knows the pod
  // only by its state (0: not recorded, the syncer's default_grace).
  int64_t grace_ms = 0;
  std::map<std::string, ContainerRecord> containers;                  // by name
  std::map<std::string, std::pair<std::string, int64_t>> conditions;  // type -> status, since
  std::optional<PodSyncResult> final_result;                          // after terminate()
};

using PodEntry = RuntimePodSyncer::PodEntry;

class PodWorker {
 public:
  PodWorker(RuntimePodSyncer& s, PodEntry& e, const core::Pod* pod)
      : s_(s), e_(e), pod_(pod), now_(s.now()) {}

  static bool load(RuntimePodSyncer& s, PodEntry& e);
  void save();
  PodSyncResult sync();
  // `release_slots` (optional) bounds how many pods release at once, after their containers
  // stopped (runc, ip and umount are where the CPU goes; waiting out grace periods is not).
  PodSyncResult terminate(Ms grace, std::counting_semaphore<>* release_slots = nullptr);

 private:
  const std::string& key() const { return e_.uid; }
  std::string podDir() const { return s_.podDir(e_.uid); }
  std::string podLogDir() const {
    return s_.options_.log_dir + "/" + e_.ns + "_" + e_.name + "_" + e_.uid;
  }
  std::string podName() const { return e_.name + "_" + e_.ns + "(" + e_.uid + ")"; }
  void event(const std::string& type, const std::string& reason, const std::string& message,
             const std::string& container = {}, bool init = false) {
    result_.events.push_back(
        {type, reason, message,
         container.empty()
             ? ""
             : std::string(init ? "spec.initContainers{" : "spec.containers{") + container + "}"});
  }
  void resyncWithin(Ms d) {
    d = std::max(d, Ms(1));
    if (!result_.resync_after || d < *result_.resync_after) result_.resync_after = d;
  }
  void resyncAt(Clock::time_point t) {
    resyncWithin(std::chrono::duration_cast<Ms>(t - now_) + Ms(1));
  }
  Ms grace() const {
    const auto& spec = pod_->spec();
    return spec.has_termination_grace_period_seconds()
               ? Ms(1000 * spec.termination_grace_period_seconds())
               : s_.options_.default_grace;
  }

  ContainerStatus observe(const ContainerRecord& rec);
  bool ensureSandbox();
  bool ensurePodCgroup();
  bool runInitContainers();
  void syncContainer(const core::Container& c, ContainerRecord& rec, const std::string& field);
  bool restartOrBackOff(const core::Container& c, ContainerRecord& rec, const ContainerStatus& st,
                        const std::string& field);
  bool startContainer(const core::Container& c, ContainerRecord& rec, const std::string& field);
  void failStart(ContainerRecord& rec, const std::string& reason, const std::string& message);
  bool inStartBackOff(ContainerRecord& rec);
  void runProbes(const core::Container& c, ContainerRecord& rec, const ContainerStatus& st);
  void stopContainer(const core::Container* c, ContainerRecord& rec, Ms grace);
  void removeContainer(const std::string& id);
  std::optional<images::ImageInfo> ensureImage(const core::Container& c, ContainerRecord& rec);
  void fillStatus(core::PodStatus& status, bool final);
  void containerStatus(const core::Container& c, const ContainerRecord& rec, bool init,
                       core::ContainerStatus& out);
  void setCondition(core::PodStatus& status, const std::string& type, bool value,
                    const std::string& reason = {}, const std::string& message = {});
  void release();

  RuntimePodSyncer& s_;
  PodEntry& e_;
  const core::Pod* pod_;  // nullptr for orphans
  Clock::time_point now_;
  PodSyncResult result_;
  std::map<std::string, volumes::PodVolume> volumes_;
  bool init_failed_ = false;
};

// ---- persistence

void PodWorker::save() {
  if (pod_ != nullptr) {
    for (auto& [name, rec] : e_.containers) {
      const core::Container* spec_c = nullptr;
      for (const auto& c : pod_->spec().containers())
        if (c.name() == name) spec_c = &c;
      for (const auto& c : pod_->spec().init_containers())
        if (c.name() == name) spec_c = &c;
      if (spec_c != nullptr && spec_c->has_lifecycle() && spec_c->lifecycle().has_pre_stop()) {
        rec.pre_stop = spec_c->lifecycle().pre_stop();
      } else {
        rec.pre_stop.reset();
      }
    }
  }
  Value doc = Value::object();
  doc.set("uid", Value::string(e_.uid));
  doc.set("namespace", Value::string(e_.ns));
  doc.set("name", Value::string(e_.name));
  doc.set("sandboxReady", Value::boolean(e_.sandbox_ready));
  doc.set("ip", Value::string(e_.ip));
  doc.set("netns", Value::string(e_.netns_path));
  doc.set("startNs", Value::integer(e_.start_ns));
  doc.set("phase", Value::string(e_.phase));
  if (e_.grace_ms > 0) doc.set("terminationGraceMs", Value::integer(e_.grace_ms));
  Value containers = Value::array();
  for (const auto& [name, rec] : e_.containers) {
    Value c = Value::object();
    c.set("name", Value::string(rec.name));
    c.set("init", Value::boolean(rec.init));
    c.set("id", Value::string(rec.id));
    c.set("attempt", Value::integer(rec.attempt));
    c.set("restartCount", Value::integer(rec.restart_count));
    c.set("backoffMs", Value::integer(rec.backoff_ms));
    c.set("lastFailureNs", Value::integer(rec.last_failure_ns));
    c.set("image", Value::string(rec.image_name));
    c.set("imageID", Value::string(rec.image_id));
    c.set("done", Value::boolean(rec.done));
    if (rec.pre_stop) c.set("preStop", api::encode(*rec.pre_stop));
    if (rec.last) {
      Value l = Value::object();
      l.set("exitCode", Value::integer(rec.last->exit_code));
      l.set("reason", Value::string(rec.last->reason));
      l.set("startedNs", Value::integer(rec.last->started_ns));
      l.set("finishedNs", Value::integer(rec.last->finished_ns));
      l.set("id", Value::string(rec.last->id));
      c.set("last", std::move(l));
    }
    containers.push(std::move(c));
  }
  doc.set("containers", std::move(containers));
  Value conditions = Value::object();
  for (const auto& [type, v] : e_.conditions) {
    Value c = Value::object();
    c.set("status", Value::string(v.first));
    c.set("since", Value::integer(v.second));
    conditions.set(type, std::move(c));
  }
  doc.set("conditions", std::move(conditions));
  fs::create_directories(podDir());
  writeFileAtomically(podDir() + "/state.json", api::writeJson(doc, api::JsonStyle::kPretty));
}

bool PodWorker::load(RuntimePodSyncer& s, PodEntry& e) {
  const std::string path = s.podDir(e.uid) + "/state.json";
  if (!fs::exists(path)) return false;
  const Value doc = api::parseJson(readFile(path), {.source = path});
  e.ns = str(doc, "namespace");
  e.name = str(doc, "name");
  e.sandbox_ready = flag(doc, "sandboxReady");
  e.ip = str(doc, "ip");
  e.netns_path = str(doc, "netns");
  e.start_ns = num(doc, "startNs");
  e.phase = str(doc, "phase");
  e.grace_ms = num(doc, "terminationGraceMs");
  if (const Value* cs = doc.find("containers"); cs != nullptr && cs->isArray()) {
    for (const Value& c : cs->items()) {
      ContainerRecord rec;
      rec.name = str(c, "name");
      rec.init = flag(c, "init");
      rec.id = str(c, "id");
      rec.attempt = static_cast<int>(num(c, "attempt"));
      rec.restart_count = static_cast<int>(num(c, "restartCount"));
      rec.backoff_ms = num(c, "backoffMs");
      rec.last_failure_ns = num(c, "lastFailureNs");
      rec.image_name = str(c, "image");
      rec.image_id = str(c, "imageID");
      rec.done = flag(c, "done");
      if (const Value* hook = c.find("preStop"); hook != nullptr && hook->isObject()) {
        core::LifecycleHandler handler;
        api::decode(*hook, handler);
        rec.pre_stop = std::move(handler);
      }
      if (const Value* l = c.find("last"); l != nullptr && l->isObject()) {
        rec.last = Termination{static_cast<int>(num(*l, "exitCode")), str(*l, "reason"),
                               num(*l, "startedNs"), num(*l, "finishedNs"), str(*l, "id")};
      }
      e.containers[rec.name] = std::move(rec);
    }
  }
  if (const Value* cs = doc.find("conditions"); cs != nullptr && cs->isObject()) {
    for (const auto& m : cs->members()) {
      e.conditions[m.key] = {str(m.value, "status"), num(m.value, "since")};
    }
  }
  return true;
}

// ---- sync

ContainerStatus PodWorker::observe(const ContainerRecord& rec) {
  ContainerStatus st;
  st.id = rec.id;
  if (rec.id.empty()) return st;
  try {
    st = s_.runtime_.status(rec.id);
  } catch (const std::exception&) {
    st.state = ContainerState::kUnknown;
  }
  return st;
}

bool PodWorker::ensureSandbox() {
  if (pod_->spec().host_network()) {
    e_.ip = s_.options_.host_ip;
    e_.netns_path.clear();
    e_.sandbox_ready = true;
    e_.sandbox_checked = true;
    return true;
  }
  if (e_.sandbox_ready && e_.sandbox_checked) return true;
  try {
    const network::PodNetwork net = s_.network_.setUp(key());
    e_.ip = net.ip;
    e_.netns_path = net.netns_path;
    const std::string hostname =
        pod_->spec().hostname().empty() ? e_.name : pod_->spec().hostname();
    std::string hosts =
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
        "ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n";
    hosts += e_.ip + "\t" + hostname + "\n";
    for (const auto& alias : pod_->spec().host_aliases()) {
      hosts += alias.ip();
      for (const auto& h : alias.hostnames())
        hosts += "\t" + h;
      hosts += "\n";
    }
    fs::create_directories(podDir());
    writeFileAtomically(podDir() + "/etc-hosts", hosts);
    e_.sandbox_ready = true;
    e_.sandbox_checked = true;
    save();
    return true;
  } catch (const std::exception& ex) {
    event("Warning", "FailedCreatePodSandBox",
          std::string("Failed to create pod sandbox: ") + ex.what());
    resyncWithin(s_.options_.backoff_base);
    return false;
  }
}

bool PodWorker::ensurePodCgroup() {
  if (e_.cgroup_applied) {
    bool present = true;
    std::error_code ec;
    for (const auto& dir : e_.cgroup_dirs)
      present = present && fs::is_directory(dir, ec);
    if (present) return true;
  }
  try {
    const PodResourceConfig config = podResourceConfig(pod_->spec(), s_.options_.pod_max_pids);
    std::vector<CgroupHierarchy> hierarchies;
    {
      std::lock_guard<std::mutex> lock(s_.cgroups_mu_);
      if (!s_.cgroup_hierarchies_) {
        s_.cgroup_hierarchies_ = discoverCgroupHierarchies(s_.options_.cgroup_root);
      }
      hierarchies = *s_.cgroup_hierarchies_;
    }
    const std::string name = "pod" + key();
    const PodCgroupResult applied =
        applyPodCgroup(hierarchies, s_.options_.cgroup_parent, name, config);
    {
      std::lock_guard<std::mutex> lock(s_.cgroups_mu_);
      for (const auto& c : applied.unsupported) {
        if (s_.cgroup_unsupported_logged_.insert(c).second) {
          std::cerr << "skiff agent: pod cgroups: no " << c << " controller below "
                    << s_.options_.cgroup_root << s_.options_.cgroup_parent
                    << ", pods get no pod-level " << c << " limits" << std::endl;
        }
      }
    }
    e_.cgroup_dirs = applied.dirs;
    e_.cgroup_applied = true;
    return true;
  } catch (const std::exception& ex) {
    event("Warning", "FailedCreatePodContainer",
          std::string("unable to ensure pod container exists: ") + ex.what());
    resyncWithin(s_.options_.backoff_base);
    return false;
  }
}

bool PodWorker::runInitContainers() {
  const auto& spec = pod_->spec();
  const std::string& policy = spec.restart_policy();
  for (int i = 0; i < spec.init_containers_size(); ++i) {
    const core::Container& c = spec.init_containers(i);
    ContainerRecord& rec = e_.containers[c.name()];
    const std::string field = "spec.initContainers[" + std::to_string(i) + "]";
    if (rec.done) continue;
    if (!rec.id.empty()) {
      ContainerStatus st = observe(rec);
      if (st.state == ContainerState::kCreated) {
        try {
          s_.runtime_.start(rec.id);
        } catch (const std::exception&) {
        }
        return false;
      }
      if (st.state == ContainerState::kRunning) return false;
      if (st.state == ContainerState::kUnknown) {
        st.state = ContainerState::kStopped;
        st.exit_code = 255;
        st.reason = "ContainerStatusUnknown";
      }
      if (st.exit_code.value_or(1) == 0) {
        rec.done = true;
        continue;
      }
      if (policy == "Never") {
        init_failed_ = true;
        return false;
      }
      restartOrBackOff(c, rec, st, field);
      return false;
    }
    startContainer(c, rec, field);
    return false;
  }
  return true;
}

void PodWorker::syncContainer(const core::Container& c, ContainerRecord& rec,
                              const std::string& field) {
  if (rec.id.empty()) {
    startContainer(c, rec, field);
    return;
  }
  ContainerStatus st = observe(rec);
  if (st.state == ContainerState::kCreated) {
    // Created but never started (a kubelet that stopped in between): start it now.
    try {
      s_.runtime_.start(rec.id);
      event("Normal", "Started", "Started container " + c.name(), c.name());
    } catch (const std::exception& ex) {
      try {
        removeContainer(rec.id);
      } catch (const std::exception&) {
        // Left for terminate(), which removes every container of the pod by its id prefix.
      }
      rec.id.clear();
      failStart(rec, "RunContainerError", ex.what());
      event("Warning", "Failed", std::string("Error: ") + ex.what(), c.name());
    }
    return;
  }
  if (st.state == ContainerState::kRunning) {
    runProbes(c, rec, st);
    st = observe(rec);
    if (st.state == ContainerState::kRunning || st.state == ContainerState::kCreated) return;
  }
  if (st.state == ContainerState::kUnknown) {
    st.state = ContainerState::kStopped;
    st.exit_code = 255;
    st.reason = "ContainerStatusUnknown";
  }
  const std::string& policy = pod_->spec().restart_policy();
  const bool restart = policy.empty() || policy == "Always" ||
                       (policy == "OnFailure" && st.exit_code.value_or(1) != 0);
  if (restart) restartOrBackOff(c, rec, st, field);
}

bool PodWorker::restartOrBackOff(const core::Container& c, ContainerRecord& rec,
                                 const ContainerStatus& st, const std::string& field) {
  const int64_t ran_ns = st.finished_at_ns - st.started_at_ns;
  const bool ran_long =
      st.started_at_ns > 0 &&
      ran_ns >=
          std::chrono::duration_cast<std::chrono::nanoseconds>(s_.options_.backoff_reset).count();
  if (!ran_long && rec.backoff_ms > 0) {
    const int64_t until = st.finished_at_ns + rec.backoff_ms * 1000000;
    if (toNs(now_) < until) {
      rec.waiting_reason = "CrashLoopBackOff";
      rec.waiting_message = "back-off " + formatDuration(Ms(rec.backoff_ms)) +
                            " restarting failed container=" + c.name() + " pod=" + podName();
      event("Warning", "BackOff",
            "Back-off restarting failed container " + c.name() + " in pod " + podName(), c.name(),
            rec.init);
      resyncWithin(Ms((until - toNs(now_)) / 1000000 + 1));
      return false;
    }
  }
  rec.backoff_ms = (rec.backoff_ms == 0 || ran_long)
                       ? s_.options_.backoff_base.count()
                       : std::min<int64_t>(2 * rec.backoff_ms, s_.options_.backoff_max.count());
  rec.last = Termination{st.exit_code.value_or(255), st.reason, st.started_at_ns, st.finished_at_ns,
                         rec.id};
  try {
    removeContainer(rec.id);
  } catch (const std::exception& ex) {
    // The dead container stays behind; terminate() retries. The restart goes ahead under a new id.
    event("Warning", "Failed", std::string("Error removing the dead container: ") + ex.what(),
          c.name(), rec.init);
  }
  rec.id.clear();
  ++rec.restart_count;
  rec.last_failure_ns = 0;
  // Logs of the restart before the previous one go (kubectl logs --previous needs only one).
  std::error_code ec;
  fs::remove(podLogDir() + "/" + c.name() + "/" + std::to_string(rec.restart_count - 2) + ".log",
             ec);
  save();
  return startContainer(c, rec, field);
}

void PodWorker::failStart(ContainerRecord& rec, const std::string& reason,
                          const std::string& message) {
  rec.waiting_reason = reason;
  rec.waiting_message = message;
  if (rec.backoff_ms == 0) {
    rec.backoff_ms = s_.options_.backoff_base.count();
  } else if (rec.last_failure_ns != 0) {
    rec.backoff_ms = std::min<int64_t>(2 * rec.backoff_ms, s_.options_.backoff_max.count());
  }
  rec.last_failure_ns = toNs(now_);
  resyncWithin(Ms(rec.backoff_ms));
  save();
}

bool PodWorker::inStartBackOff(ContainerRecord& rec) {
  if (rec.last_failure_ns == 0) return false;
  const int64_t until = rec.last_failure_ns + rec.backoff_ms * 1000000;
  if (toNs(now_) >= until) return false;
  if (rec.waiting_reason == "ErrImagePull") rec.waiting_reason = "ImagePullBackOff";
  if (rec.waiting_reason == "ImagePullBackOff") {
    event("Normal", "BackOff", "Back-off pulling image \"" + rec.image_name + "\"", rec.name,
          rec.init);
  }
  if (rec.waiting_reason.empty()) rec.waiting_reason = "ContainerCreating";
  resyncWithin(Ms((until - toNs(now_)) / 1000000 + 1));
  return true;
}

std::optional<images::ImageInfo> PodWorker::ensureImage(const core::Container& c,
                                                        ContainerRecord& rec) {
  const std::string& ref = c.image();
  rec.image_name = ref;
  images::PullPolicy policy;
  std::optional<images::ImageInfo> present;
  try {
    if (ref.empty()) throw std::invalid_argument("no image given");
    const images::Reference parsed = images::Reference::parse(ref);
    const std::string& given =
        c.image_pull_policy().empty() ? s_.options_.default_pull_policy : c.image_pull_policy();
    policy = images::parsePullPolicy(given, parsed);
    present = s_.images_.find(ref);
  } catch (const std::invalid_argument& ex) {
    failStart(rec, "InvalidImageName",
              "Failed to apply default image tag \"" + ref + "\": " + ex.what());
    event("Warning", "InspectFailed", rec.waiting_message, c.name(), rec.init);
    return std::nullopt;
  } catch (const std::exception& ex) {
    failStart(rec, "ErrImagePull", ex.what());
    event("Warning", "Failed", std::string("Error: ") + ex.what(), c.name(), rec.init);
    return std::nullopt;
  }
  switch (images::decidePull(policy, present.has_value())) {
    case images::PullDecision::kUsePresent:
      event("Normal", "Pulled", "Container image \"" + ref + "\" already present on machine",
            c.name(), rec.init);
      return present;
    case images::PullDecision::kNeverPullMissing: {
      const std::string message =
          "Container image \"" + ref + "\" is not present with pull policy of Never";
      failStart(rec, "ErrImageNeverPull", message);
      event("Warning", "ErrImageNeverPull", message, c.name(), rec.init);
      return std::nullopt;
    }
    case images::PullDecision::kPull:
      break;
  }
  event("Normal", "Pulling", "Pulling image \"" + ref + "\"", c.name(), rec.init);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    images::ImageInfo info = s_.images_.pull(ref);
    const auto took = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0);
    std::ostringstream secs;
    secs.precision(3);
    secs << std::fixed << took.count() / 1000.0;
    event("Normal", "Pulled", "Successfully pulled image \"" + ref + "\" in " + secs.str() + "s",
          c.name(), rec.init);
    return info;
  } catch (const std::exception& ex) {
    const std::string message = "Failed to pull image \"" + ref + "\": " + ex.what();
    failStart(rec, "ErrImagePull", message);
    event("Warning", "Failed", message, c.name(), rec.init);
    event("Warning", "Failed", "Error: ErrImagePull", c.name(), rec.init);
    return std::nullopt;
  }
}

bool PodWorker::startContainer(const core::Container& c, ContainerRecord& rec,
                               const std::string& field) {
  if (inStartBackOff(rec)) return false;
  // runc would make a pod cgroup that went missing without the pod's limits.
  if (!ensurePodCgroup()) return false;
  const std::optional<images::ImageInfo> image = ensureImage(c, rec);
  if (!image) return false;
  rec.image_name = image->name;
  rec.image_id = image->repo_digest;

  const std::string id = key() + "_" + c.name() + "_" + std::to_string(rec.attempt++);
  save();
  const std::string dir = podDir() + "/containers/" + id;
  ContainerConfig config;
  config.id = id;
  config.bundle_dir = dir;
  auto undo = [&] {
    try {
      s_.images_.releaseRootfs(id, dir);
    } catch (const std::exception&) {
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
  };
  try {
    fs::create_directories(dir);
    config.rootfs = s_.images_.prepareRootfs(*image, id, dir);
  } catch (const std::exception& ex) {
    undo();
    failStart(rec, "CreateContainerError", ex.what());
    event("Warning", "Failed", std::string("Error: ") + ex.what(), c.name(), rec.init);
    return false;
  }
  try {
    const ResolvedEnv env =
        resolveContainerEnv(*pod_, c, s_.fetcher_, {e_.ip, s_.options_.host_ip}, field);
    // The Services' variables first: envFrom and env override them, and $(VAR) may use them.
    std::vector<std::pair<std::string, std::string>> extra_env;
    if (s_.options_.services) {
      auto services = s_.options_.services(pod_->metadata().namespace_());
      if (!services) {
        throw std::runtime_error(
            "services have not yet been read at least once, cannot construct envvars");
      }
      extra_env = serviceEnvVars(*pod_, *services);
    }
    extra_env.insert(extra_env.end(), env.env_from.begin(), env.env_from.end());
    applyContainerSpec(pod_->spec(), env.container, image->config, config.rootfs, field, config,
                       extra_env);
    config.mounts = volumes::VolumeManager::containerMounts(c, volumes_, field);
  } catch (const std::exception& ex) {
    undo();
    failStart(rec, "CreateContainerConfigError", ex.what());
    event("Warning", "Failed", std::string("Error: ") + ex.what(), c.name(), rec.init);
    return false;
  }
  const bool hosts_mounted =
      std::any_of(config.mounts.begin(), config.mounts.end(),
                  [](const MountSpec& m) { return m.destination == "/etc/hosts"; });
  if (!pod_->spec().host_network() && !hosts_mounted) {
    config.mounts.push_back({"/etc/hosts", podDir() + "/etc-hosts", "bind", {"rbind", "rw"}});
  }
  std::string hostname = pod_->spec().hostname().empty() ? e_.name : pod_->spec().hostname();
  if (hostname.size() > 63) hostname.resize(63);
  config.hostname = hostname;
  config.host_network = pod_->spec().host_network();
  config.netns_path = e_.netns_path;
  config.cgroups_path = s_.options_.cgroup_parent + "/pod" + key() + "/" + id;
  config.log_path = podLogDir() + "/" + c.name() + "/" + std::to_string(rec.restart_count) + ".log";
  try {
    s_.runtime_.create(config);
  } catch (const std::exception& ex) {
    undo();
    failStart(rec, "CreateContainerError", ex.what());
    event("Warning", "Failed", std::string("Error: ") + ex.what(), c.name(), rec.init);
    return false;
  }
  event("Normal", "Created", "Created container: " + c.name(), c.name(), rec.init);
  try {
    s_.runtime_.start(id);
  } catch (const std::exception& ex) {
    try {
      removeContainer(id);
    } catch (const std::exception&) {
      // Left for terminate(), which removes every container of the pod by its id prefix.
    }
    failStart(rec, "RunContainerError", ex.what());
    event("Warning", "Failed", std::string("Error: ") + ex.what(), c.name(), rec.init);
    return false;
  }
  rec.id = id;
  rec.waiting_reason.clear();
  rec.waiting_message.clear();
  rec.last_failure_ns = 0;
  rec.probes.clear();
  rec.probes_for.clear();
  event("Normal", "Started", "Started container " + c.name(), c.name(), rec.init);
  save();
  return true;
}

void PodWorker::runProbes(const core::Container& c, ContainerRecord& rec,
                          const ContainerStatus& st) {
  if (rec.probes_for != rec.id) {
    rec.probes.clear();
    const Clock::time_point started =
        st.started_at_ns > 0 ? Clock::time_point(std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::nanoseconds(st.started_at_ns)))
                             : now_;
    if (c.has_startup_probe())
      rec.probes.emplace_back(c.startup_probe(), ProbeKind::kStartup, started);
    if (c.has_liveness_probe()) {
      rec.probes.emplace_back(c.liveness_probe(), ProbeKind::kLiveness, started);
    }
    if (c.has_readiness_probe()) {
      rec.probes.emplace_back(c.readiness_probe(), ProbeKind::kReadiness, started);
    }
    rec.probes_for = rec.id;
  }
  const prober::ProbeTarget target{e_.ip, e_.netns_path, rec.id, &c};
  for (ProbeTracker& t : rec.probes) {
    bool started = true;
    for (const ProbeTracker& other : rec.probes) {
      if (other.kind() == ProbeKind::kStartup) started = other.result() == ProbeResult::kSuccess;
    }
    if (t.kind() == ProbeKind::kStartup ? started : !started) continue;
    if (t.due(now_)) {
      const prober::ProbeOutcome outcome = s_.probes_.run(t.probe(), target);
      // Probes take time; the next one is due a period after this one ended.
      now_ = s_.now();
      t.record(outcome.success, now_);
      if (!outcome.success) {
        event("Warning", "Unhealthy",
              std::string(prober::probeKindName(t.kind())) + " probe failed: " + outcome.message,
              c.name());
      }
    }
    if (t.kind() != ProbeKind::kReadiness && t.result() == ProbeResult::kFailure) {
      event("Normal", "Killing",
            "Container " + c.name() + " failed " +
                (t.kind() == ProbeKind::kStartup ? "startup" : "liveness") +
                " probe, will be restarted",
            c.name());
      stopContainer(&c, rec, grace());
      return;
    }
    if (t.kind() != ProbeKind::kStartup || t.result() != ProbeResult::kSuccess) {
      resyncAt(t.nextDue());
    }
  }
}

void PodWorker::stopContainer(const core::Container* c, ContainerRecord& rec, Ms grace) {
  if (rec.id.empty()) return;
  const ContainerStatus st = observe(rec);
  if (st.state != ContainerState::kRunning && st.state != ContainerState::kCreated) return;
  const auto t0 = std::chrono::steady_clock::now();
  // A zero grace period (a forced delete, a finished pod) runs no hook.
  if (c != nullptr && grace.count() > 0 && c->has_lifecycle() && c->lifecycle().has_pre_stop()) {
    const core::LifecycleHandler& pre = c->lifecycle().pre_stop();
    if (pre.has_exec()) {
      const std::vector<std::string> argv(pre.exec().command().begin(), pre.exec().command().end());
      try {
        const ExecResult r = s_.runtime_.exec(rec.id, argv, grace);
        if (r.exit_code != 0) {
          event("Warning", "FailedPreStopHook",
                "PreStopHook failed: command exited with " + std::to_string(r.exit_code), c->name(),
                rec.init);
        }
      } catch (const std::exception& ex) {
        event("Warning", "FailedPreStopHook", std::string("PreStopHook failed: ") + ex.what(),
              c->name(), rec.init);
      }
    } else if (pre.has_sleep()) {
      std::this_thread::sleep_for(std::min<Ms>(grace, Ms(1000 * pre.sleep().seconds())));
    }
  }
  // The hook used part of the grace period; Kubernetes leaves the container at least 2 s.
  const Ms used = std::chrono::duration_cast<Ms>(std::chrono::steady_clock::now() - t0);
  const Ms left = used.count() > 0 && used < grace ? std::max(grace - used, Ms(2000))
                  : used.count() > 0               ? Ms(2000)
                                                   : grace;
  try {
    // No grace at all (a forced delete, a crashed node's leftovers): SIGKILL, no SIGTERM first.
    s_.runtime_.stop(rec.id, left, left.count() > 0 ? SIGTERM : SIGKILL);
  } catch (const std::exception& ex) {
    event("Warning", "FailedKillPod", std::string("error killing container: ") + ex.what(),
          rec.name, rec.init);
  }
}

void PodWorker::removeContainer(const std::string& id) {
  if (id.empty()) return;
  const std::string dir = podDir() + "/containers/" + id;
  s_.runtime_.remove(id);
  s_.images_.releaseRootfs(id, dir);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

void PodWorker::setCondition(core::PodStatus& status, const std::string& type, bool value,
                             const std::string& reason, const std::string& message) {
  core::PodCondition* c = status.add_conditions();
  c->set_type(type);
  const std::string v = value ? "True" : "False";
  c->set_status(v);
  auto& known = e_.conditions[type];
  if (known.first != v) known = {v, toNs(now_)};
  setTime(c->mutable_last_transition_time(), known.second);
  if (!reason.empty()) c->set_reason(reason);
  if (!message.empty()) c->set_message(message);
  if (pod_ != nullptr) c->set_observed_generation(pod_->metadata().generation());
}

void PodWorker::containerStatus(const core::Container& c, const ContainerRecord& rec, bool init,
                                core::ContainerStatus& out) {
  out.set_name(c.name());
  out.set_image(rec.image_name.empty() ? c.image() : rec.image_name);
  out.set_image_id(rec.image_id);
  out.set_restart_count(rec.restart_count);
  out.set_ready(false);
  out.set_started(false);
  auto setTerminated = [](core::ContainerStateTerminated* t, const Termination& term) {
    t->set_exit_code(term.exit_code);
    if (term.exit_code > 128) t->set_signal(term.exit_code - 128);
    t->set_reason(term.reason.empty() ? (term.exit_code == 0 ? "Completed" : "Error")
                                      : term.reason);
    if (term.started_ns > 0) setTime(t->mutable_started_at(), term.started_ns);
    if (term.finished_ns > 0) setTime(t->mutable_finished_at(), term.finished_ns);
    if (!term.id.empty()) t->set_container_id("skiff://" + term.id);
  };
  ContainerStatus st = observe(rec);
  if (!rec.id.empty()) out.set_container_id("skiff://" + rec.id);
  if (st.state == ContainerState::kUnknown && !rec.id.empty()) {
    st.state = ContainerState::kStopped;
    st.exit_code = 255;
    st.reason = "ContainerStatusUnknown";
  }
  const Termination current{st.exit_code.value_or(255), st.reason, st.started_at_ns,
                            st.finished_at_ns, rec.id};
  const bool running = st.state == ContainerState::kRunning;
  if (!rec.waiting_reason.empty() && !running) {
    auto* w = out.mutable_state()->mutable_waiting();
    w->set_reason(rec.waiting_reason);
    if (!rec.waiting_message.empty()) w->set_message(rec.waiting_message);
    if (!rec.id.empty() && st.state == ContainerState::kStopped) {
      setTerminated(out.mutable_last_state()->mutable_terminated(), current);
    } else if (rec.last) {
      setTerminated(out.mutable_last_state()->mutable_terminated(), *rec.last);
    }
    return;
  }
  if (rec.last) setTerminated(out.mutable_last_state()->mutable_terminated(), *rec.last);
  if (running) {
    setTime(out.mutable_state()->mutable_running()->mutable_started_at(), st.started_at_ns);
    bool started = true, ready = true;
    bool has_readiness = false, has_startup = false;
    for (const ProbeTracker& t : rec.probes) {
      if (t.kind() == ProbeKind::kStartup) started = t.result() == ProbeResult::kSuccess;
      if (t.kind() == ProbeKind::kReadiness) ready = t.result() == ProbeResult::kSuccess;
      has_readiness = has_readiness || t.kind() == ProbeKind::kReadiness;
      has_startup = has_startup || t.kind() == ProbeKind::kStartup;
    }
    // Probes not yet set up (a container started in this sync): not ready until they pass.
    if (rec.probes_for != rec.id) {
      if (c.has_startup_probe()) started = false;
      if (c.has_readiness_probe()) ready = false;
    }
    out.set_started(started);
    out.set_ready(!init && started && ready);
    return;
  }
  if (st.state == ContainerState::kStopped) {
    setTerminated(out.mutable_state()->mutable_terminated(), current);
    out.set_ready(init && current.exit_code == 0);
    return;
  }
  out.mutable_state()->mutable_waiting()->set_reason("ContainerCreating");
}

void PodWorker::fillStatus(core::PodStatus& status, bool final) {
  const core::PodSpec& spec = pod_ != nullptr ? pod_->spec() : core::PodSpec();
  if (!s_.options_.host_ip.empty()) {
    status.set_host_ip(s_.options_.host_ip);
    status.add_host_ips()->set_ip(s_.options_.host_ip);
  }
  if (!e_.ip.empty()) {
    status.set_pod_ip(e_.ip);
    status.add_pod_ips()->set_ip(e_.ip);
  }
  if (e_.start_ns > 0) setTime(status.mutable_start_time(), e_.start_ns);
  if (pod_ != nullptr && pod_->status().has_qos_class()) {
    status.set_qos_class(pod_->status().qos_class());
  }

  bool initialized = true;
  std::vector<std::string> incomplete;
  for (const auto& c : spec.init_containers()) {
    ContainerRecord& rec = e_.containers[c.name()];
    rec.init = true;
    core::ContainerStatus* cs = status.add_init_container_statuses();
    containerStatus(c, rec, true, *cs);
    if (!rec.done) {
      initialized = false;
      incomplete.push_back(c.name());
    }
    if (cs->state().has_terminated() && cs->state().terminated().exit_code() != 0 &&
        spec.restart_policy() == "Never") {
      init_failed_ = true;
    }
  }
  int running = 0, waiting = 0, stopped = 0, succeeded = 0;
  std::vector<std::string> unready;
  for (const auto& c : spec.containers()) {
    ContainerRecord& rec = e_.containers[c.name()];
    core::ContainerStatus* cs = status.add_container_statuses();
    if (!initialized && rec.id.empty() && rec.waiting_reason.empty()) {
      containerStatus(c, rec, false, *cs);
      cs->mutable_state()->mutable_waiting()->set_reason("PodInitializing");
    } else {
      containerStatus(c, rec, false, *cs);
    }
    if (!cs->ready()) unready.push_back(c.name());
    if (cs->state().has_running()) {
      ++running;
    } else if (cs->state().has_terminated()) {
      ++stopped;
      if (cs->state().terminated().exit_code() == 0) ++succeeded;
    } else if (cs->last_state().has_terminated()) {
      ++stopped;  // waiting to restart
    } else {
      ++waiting;
    }
  }
  const std::string& policy = spec.restart_policy();
  std::string phase;
  if (init_failed_) {
    phase = "Failed";
  } else if (!initialized) {
    phase = "Pending";
  } else if (waiting > 0) {
    phase = "Pending";
  } else if (running > 0) {
    phase = "Running";
  } else if (stopped > 0) {
    if (policy.empty() || policy == "Always") {
      phase = "Running";
    } else if (stopped == succeeded) {
      phase = "Succeeded";
    } else if (policy == "Never") {
      phase = "Failed";
    } else {
      phase = "Running";
    }
  } else {
    phase = "Pending";
  }
  if (final && phase != "Succeeded" && phase != "Failed") {
    phase = (stopped > 0 && stopped == succeeded && waiting == 0 && running == 0) ? "Succeeded"
                                                                                  : "Failed";
  }
  if (e_.phase == "Succeeded" || e_.phase == "Failed") phase = e_.phase;  // terminal stays
  e_.phase = phase;
  status.set_phase(phase);

  auto joined = [](const std::vector<std::string>& names) {
    std::string s = "[";
    for (size_t i = 0; i < names.size(); ++i)
      s += (i ? " " : "") + names[i];
    return s + "]";
  };
  const bool completed = phase == "Succeeded";
  setCondition(status, "PodReadyToStartContainers", e_.sandbox_ready && !final);
  if (initialized) {
    setCondition(status, "Initialized", true);
  } else {
    setCondition(status, "Initialized", false, "ContainersNotInitialized",
                 "containers with incomplete status: " + joined(incomplete));
  }
  const bool containers_ready = unready.empty() && !final && phase == "Running";
  std::string ready_reason = completed ? "PodCompleted" : "ContainersNotReady";
  std::string ready_message =
      completed ? std::string() : "containers with unready status: " + joined(unready);
  // Readiness gates: conditions others set on the pod must be True too.
  std::vector<std::string> gates_missing;
  if (pod_ != nullptr) {
    for (const auto& gate : spec.readiness_gates()) {
      bool ok = false;
      for (const auto& c : pod_->status().conditions()) {
        ok = ok || (c.type() == gate.condition_type() && c.status() == "True");
      }
      if (!ok) gates_missing.push_back(gate.condition_type());
    }
  }
  if (containers_ready) {
    setCondition(status, "ContainersReady", true);
  } else {
    setCondition(status, "ContainersReady", false, ready_reason, ready_message);
  }
  if (containers_ready && gates_missing.empty()) {
    setCondition(status, "Ready", true);
  } else if (containers_ready) {
    setCondition(status, "Ready", false, "ReadinessGatesNotReady",
                 "corresponding condition of pod readiness gate \"" + gates_missing.front() +
                     "\" does not exist.");
  } else {
    setCondition(status, "Ready", false, ready_reason, ready_message);
  }
  // Conditions the kubelet does not own (PodScheduled, readiness gates) stay as they are.
  if (pod_ != nullptr) {
    static const std::set<std::string> kOwned = {"PodReadyToStartContainers", "Initialized",
                                                 "ContainersReady", "Ready"};
    for (const auto& c : pod_->status().conditions()) {
      if (!kOwned.count(c.type())) *status.add_conditions() = c;
    }
  }
}

PodSyncResult PodWorker::sync() {
  e_.ns = pod_->metadata().namespace_();
  e_.name = pod_->metadata().name();
  if (e_.start_ns == 0) e_.start_ns = toNs(now_);
  e_.grace_ms = grace().count();
  const auto& spec = pod_->spec();
  for (const auto& c : spec.init_containers()) {
    e_.containers[c.name()].name = c.name();
    e_.containers[c.name()].init = true;
  }
  for (const auto& c : spec.containers())
    e_.containers[c.name()].name = c.name();
  const bool terminal = e_.phase == "Succeeded" || e_.phase == "Failed";
  if (!terminal && ensureSandbox() && ensurePodCgroup()) {
    bool volumes_ok = true;
    try {
      volumes_ = s_.volumes_.setUp(*pod_, podDir());
    } catch (const std::exception& ex) {
      volumes_ok = false;
      event("Warning", "FailedMount", std::string("MountVolume.SetUp failed for ") + ex.what());
      resyncWithin(s_.options_.backoff_base);
    }
    if (volumes_ok && runInitContainers()) {
      for (int i = 0; i < spec.containers_size(); ++i) {
        const core::Container& c = spec.containers(i);
        syncContainer(c, e_.containers[c.name()], "spec.containers[" + std::to_string(i) + "]");
      }
    }
  } else if (terminal) {
    // A finished pod's containers that still run (a restartPolicy: Never sibling) are left alone,
    // as Kubernetes does until the pod is deleted.
  }
  fillStatus(result_.status, false);
  // Nothing tells the syncer when a container exits: while the pod runs, it asks to be synced
  // again soon (Kubernetes' PLEG relists every second).
  if (e_.phase != "Succeeded" && e_.phase != "Failed") resyncWithin(s_.options_.relist_period);
  save();
  return std::move(result_);
}

// ---- terminate

PodSyncResult PodWorker::terminate(Ms grace, std::counting_semaphore<>* release_slots) {
  if (pod_ != nullptr) {
    if (e_.ns.empty()) e_.ns = pod_->metadata().namespace_();
    if (e_.name.empty()) e_.name = pod_->metadata().name();
  }
  // Every container stops at once, each with the whole grace period.
  std::vector<std::thread> stoppers;
  std::mutex events_mu;
  std::vector<PodEvent> events;
  // Without the pod (a node shutdown, an orphan), the hooks come from the records: stand-in
  // containers that carry only the name and the preStop hook.
  std::list<core::Container> stand_ins;
  for (auto& [name, rec] : e_.containers) {
    const ContainerStatus st = observe(rec);
    if (st.state != ContainerState::kRunning && st.state != ContainerState::kCreated) continue;
    const core::Container* spec_c = nullptr;
    if (pod_ != nullptr) {
      for (const auto& c : pod_->spec().containers())
        if (c.name() == name) spec_c = &c;
      for (const auto& c : pod_->spec().init_containers())
        if (c.name() == name) spec_c = &c;
    } else if (rec.pre_stop) {
      core::Container& c = stand_ins.emplace_back();
      c.set_name(name);
      *c.mutable_lifecycle()->mutable_pre_stop() = *rec.pre_stop;
      spec_c = &c;
    }
    event("Normal", "Killing", "Stopping container " + name, name, rec.init);
    stoppers.emplace_back([this, spec_c, &rec, grace, &events_mu, &events] {
      PodWorker sub(s_, e_, pod_);
      sub.stopContainer(spec_c, rec, grace);
      std::lock_guard<std::mutex> lock(events_mu);
      events.insert(events.end(), sub.result_.events.begin(), sub.result_.events.end());
    });
  }
  for (auto& t : stoppers)
    t.join();
  result_.events.insert(result_.events.end(), events.begin(), events.end());
  for (auto& [name, rec] : e_.containers) {
    rec.waiting_reason.clear();
    rec.probes.clear();
  }
  if (pod_ != nullptr) fillStatus(result_.status, true);
  if (pod_ == nullptr) result_.status.set_phase(e_.phase.empty() ? "Failed" : e_.phase);
  if (release_slots != nullptr) {
    release_slots->acquire();
    try {
      release();
    } catch (...) {
      release_slots->release();
      throw;
    }
    release_slots->release();
  } else {
    release();
  }
  return std::move(result_);
}

void PodWorker::release() {
  std::vector<std::string> errors;
  auto attempt = [&](const std::string& what, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::exception& ex) {
      errors.push_back(what + ": " + ex.what());
    }
  };
  std::set<std::string> ids;
  for (const auto& [name, rec] : e_.containers) {
    if (!rec.id.empty()) ids.insert(rec.id);
  }
  // Containers made but not yet recorded (a kubelet that died between create and save).
  attempt("listing containers", [&] {
    for (const auto& id : s_.runtime_.list()) {
      if (id.starts_with(key() + "_")) ids.insert(id);
    }
  });
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(podDir() + "/containers", ec)) {
    ids.insert(e.path().filename().string());
  }
  for (const auto& id : ids) {
    attempt("container " + id, [&] {
      const ContainerStatus st = s_.runtime_.status(id);
      if (st.state == ContainerState::kRunning || st.state == ContainerState::kCreated) {
        s_.runtime_.stop(id, Ms(0), SIGKILL);
      }
      removeContainer(id);
    });
  }
  attempt("volumes", [&] { s_.volumes_.tearDown(podDir()); });
  attempt("sandbox network", [&] { s_.network_.tearDown(key()); });
  // The pod's cgroup in every hierarchy (the containers' went with them): below each v1
  // controller's mount, and below the root itself on a unified-only machine.
  std::vector<std::string> hierarchies = {s_.options_.cgroup_root};
  for (const auto& h : fs::directory_iterator(s_.options_.cgroup_root, ec)) {
    hierarchies.push_back(h.path().string());
  }
  for (const auto& h : hierarchies) {
    const std::string path = h + s_.options_.cgroup_parent + "/pod" + key();
    if (fs::exists(path, ec) && ::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      errors.push_back("cgroup " + path + ": " + std::strerror(errno));
    }
  }
  if (!errors.empty()) {
    std::string message = "releasing pod " + e_.uid + ":";
    for (const auto& e : errors)
      message += " " + e + ";";
    save();
    throw std::runtime_error(message);
  }
  fs::remove_all(podDir(), ec);
  if (!e_.ns.empty() || !e_.name.empty()) fs::remove_all(podLogDir(), ec);
}

// ---- RuntimePodSyncer

RuntimePodSyncer::RuntimePodSyncer(RuntimePodSyncerOptions options, images::ImageManager& images,
                                   ContainerRuntime& runtime, network::SandboxNetwork& network,
                                   volumes::VolumeSourceFetcher* fetcher,
                                   prober::ProbeRunner* probes)
    : options_(std::move(options)),
      images_(images),
      runtime_(runtime),
      network_(network),
      fetcher_(fetcher),
      volumes_(fetcher, options_.volumes),
      owned_probes_(probes == nullptr ? std::make_unique<prober::ActionProber>(runtime) : nullptr),
      probes_(probes == nullptr ? *owned_probes_ : *probes) {
  if (!options_.clock) options_.clock = [] { return Clock::now(); };
  fs::create_directories(options_.root_dir + "/pods");
}

RuntimePodSyncer::RuntimePodSyncer(RuntimePodSyncerOptions options, images::ImageStore& store,
                                   ContainerRuntime& runtime, network::PodNetworkManager& network,
                                   volumes::VolumeSourceFetcher* fetcher,
                                   images::RegistryOptions registry)
    : options_(std::move(options)),
      owned_images_(std::make_unique<images::StoreImageManager>(store, std::move(registry))),
      images_(*owned_images_),
      runtime_(runtime),
      network_(network),
      fetcher_(fetcher),
      volumes_(fetcher, options_.volumes),
      owned_probes_(std::make_unique<prober::ActionProber>(runtime)),
      probes_(*owned_probes_) {
  if (!options_.clock) options_.clock = [] { return Clock::now(); };
  fs::create_directories(options_.root_dir + "/pods");
}

RuntimePodSyncer::~RuntimePodSyncer() = default;

std::string RuntimePodSyncer::podDir(const std::string& pod_uid) const {
  return options_.root_dir + "/pods/" + pod_uid;
}

std::shared_ptr<PodEntry> RuntimePodSyncer::entryFor(const std::string& uid, bool create) {
  checkUid(uid);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(uid);
  if (it != pods_.end()) return it->second;
  auto entry = std::make_shared<PodEntry>();
  entry->uid = uid;
  if (!PodWorker::load(*this, *entry) && !create) return nullptr;
  pods_[uid] = entry;
  return entry;
}

void RuntimePodSyncer::forget(const std::string& uid) {
  std::lock_guard<std::mutex> lock(mu_);
  pods_.erase(uid);
}

PodSyncResult RuntimePodSyncer::sync(const core::Pod& pod) {
  std::shared_ptr<PodEntry> entry = entryFor(pod.metadata().uid(), true);
  std::lock_guard<std::mutex> lock(entry->mu);
  if (entry->final_result) return *entry->final_result;
  PodWorker worker(*this, *entry, &pod);
  return worker.sync();
}

PodSyncResult RuntimePodSyncer::terminate(const core::Pod& pod, std::chrono::milliseconds grace) {
  std::shared_ptr<PodEntry> entry = entryFor(pod.metadata().uid(), true);
  std::lock_guard<std::mutex> lock(entry->mu);
  if (entry->final_result) return *entry->final_result;
  PodWorker worker(*this, *entry, &pod);
  PodSyncResult result = worker.terminate(grace);
  // Kept so that terminate() and sync() of the same pod answer the same from now on.
  entry->final_result = result;
  entry->final_result->events.clear();
  return result;
}

std::vector<std::string> RuntimePodSyncer::knownPodUids() {
  std::vector<std::string> uids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.root_dir + "/pods", ec)) {
    if (fs::exists(e.path() / "state.json")) uids.push_back(e.path().filename().string());
  }
  std::sort(uids.begin(), uids.end());
  return uids;
}

std::vector<std::string> RuntimePodSyncer::shutdown(std::chrono::milliseconds max_grace,
                                                    int concurrency) {
  const std::vector<std::string> uids = knownPodUids();
  std::counting_semaphore<> release_slots(std::max(1, concurrency));
  std::mutex problems_mu;
  std::vector<std::string> problems;
  // A thread per pod: every container gets its signal at once and the grace periods run side by
  // side; only the releases queue for a slot.
  std::vector<std::thread> threads;
  threads.reserve(uids.size());
  for (const auto& uid : uids) {
    threads.emplace_back([&, uid] {
      try {
        std::shared_ptr<PodEntry> entry = entryFor(uid, true);
        {
          std::lock_guard<std::mutex> lock(entry->mu);
          const Ms recorded = entry->grace_ms > 0 ? Ms(entry->grace_ms) : options_.default_grace;
          PodWorker worker(*this, *entry, nullptr);
          worker.terminate(std::min(recorded, max_grace), &release_slots);
        }
        forget(uid);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(problems_mu);
        problems.push_back("pod " + uid + ": " + e.what());
      }
    });
  }
  for (auto& t : threads)
    t.join();
  std::sort(problems.begin(), problems.end());
  return problems;
}

void RuntimePodSyncer::cleanupOrphan(const std::string& pod_uid) {
  std::shared_ptr<PodEntry> entry = entryFor(pod_uid, true);
  {
    std::lock_guard<std::mutex> lock(entry->mu);
    PodWorker worker(*this, *entry, nullptr);
    worker.terminate(options_.orphan_grace);
  }
  forget(pod_uid);
}

}  // namespace skiff::kubelet
