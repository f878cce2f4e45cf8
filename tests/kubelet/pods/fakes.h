#pragma once

// In-memory fakes of the interfaces RuntimePodSyncer drives, for unit tests of its state
// machine: a container runtime whose containers exit when the test says so, an image manager
// with a set of stored and pullable names, a sandbox network and a scripted prober. Time comes
// from a FakeClock the test advances.

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kubelet/images/image_manager.h"
#include "kubelet/network/pod_network.h"
#include "kubelet/prober/prober.h"
#include "kubelet/runtime/runtime.h"

namespace skiff::kubelet::testing {

class FakeClock {
 public:
  std::chrono::system_clock::time_point now() const { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }
  int64_t ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now_.time_since_epoch()).count();
  }

 private:
  std::chrono::system_clock::time_point now_ =
      std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
};

class FakeRuntime final : public ContainerRuntime {
 public:
  explicit FakeRuntime(FakeClock& clock) : clock_(clock) {}

  void create(const ContainerConfig& config) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!config.args.empty() && config.args[0] == "/bin/does-not-exist") {
      throw RuntimeError("exec: \"/bin/does-not-exist\": no such file or directory");
    }
    if (containers_.count(config.id)) throw RuntimeError(config.id + " exists");
    ContainerStatus s;
    s.id = config.id;
    s.state = ContainerState::kCreated;
    containers_[config.id] = s;
    configs_[config.id] = config;
    created_.push_back(config.id);
  }
  void start(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& s = containers_.at(id);
    s.state = ContainerState::kRunning;
    s.pid = 100;
    s.started_at_ns = clock_.ns();
  }
  ContainerStatus status(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return ContainerStatus{.id = id};
    return it->second;
  }
  void kill(const std::string& id, int signal) override { exitLocked(id, 128 + signal); }
  ContainerStatus stop(const std::string& id, std::chrono::milliseconds grace,
                       int signal) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stops_.push_back({id, grace});
    }
    exitLocked(id, 128 + signal);
    return status(id);
  }
  void remove(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    containers_.erase(id);
  }
  std::vector<std::string> list() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> ids;
    for (const auto& [id, s] : containers_)
      ids.push_back(id);
    return ids;
  }
  ExecResult exec(const std::string& id, const std::vector<std::string>& argv,
                  std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    execs_.push_back({id, argv});
    return ExecResult{.exit_code = 0};
  }

  // The running container of `name` (ids are "<uid>_<name>_<attempt>") exits with `code`.
  void exitContainer(const std::string& name, int code) {
    const std::string id = running(name);
    if (id.empty()) throw std::logic_error("no running container " + name);
    exitLocked(id, code);
  }
  std::string running(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, s] : containers_) {
      if (id.find("_" + name + "_") != std::string::npos && s.state == ContainerState::kRunning) {
        return id;
      }
    }
    return {};
  }
  std::vector<std::string> created() {
    std::lock_guard<std::mutex> lock(mu_);
    return created_;
  }
  ContainerConfig config(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    return configs_.at(id);
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> execs() {
    std::lock_guard<std::mutex> lock(mu_);
    return execs_;
  }
  std::vector<std::pair<std::string, std::chrono::milliseconds>> stops() {
    std::lock_guard<std::mutex> lock(mu_);
    return stops_;
  }

 private:
  void exitLocked(const std::string& id, int code) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end() || it->second.state == ContainerState::kStopped) return;
    it->second.state = ContainerState::kStopped;
    it->second.exit_code = code;
    it->second.finished_at_ns = clock_.ns();
    it->second.reason = code == 0 ? "Completed" : "Error";
  }

  FakeClock& clock_;
  std::mutex mu_;
  std::map<std::string, ContainerStatus> containers_;
  std::map<std::string, ContainerConfig> configs_;
  std::vector<std::string> created_;
  std::vector<std::pair<std::string, std::vector<std::string>>> execs_;
  std::vector<std::pair<std::string, std::chrono::milliseconds>> stops_;
};

class FakeImages final : public images::ImageManager {
 public:
  std::optional<images::ImageInfo> find(const std::string& ref) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string name = images::Reference::parse(ref).str();
    if (!stored_.count(name)) return std::nullopt;
    return info(name);
  }
  images::ImageInfo pull(const std::string& ref) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string name = images::Reference::parse(ref).str();
    pulls_.push_back(name);
    if (!pullable_.count(name)) {
      throw std::runtime_error("manifest unknown: " + name + " not found in the registry");
    }
    stored_.insert(name);
    return info(name);
  }
  std::string prepareRootfs(const images::ImageInfo&, const std::string& id,
                            const std::string& dir) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::filesystem::create_directories(dir + "/rootfs");
    rootfs_.insert(id);
    return dir + "/rootfs";
  }
  void releaseRootfs(const std::string& id, const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    rootfs_.erase(id);
  }

  void store(const std::string& ref) { stored_.insert(images::Reference::parse(ref).str()); }
  void allowPull(const std::string& ref) { pullable_.insert(images::Reference::parse(ref).str()); }
  std::vector<std::string> pulls() {
    std::lock_guard<std::mutex> lock(mu_);
    return pulls_;
  }
  size_t rootfsInUse() {
    std::lock_guard<std::mutex> lock(mu_);
    return rootfs_.size();
  }

 private:
  static images::ImageInfo info(const std::string& name) {
    images::ImageInfo i;
    i.name = name;
    i.image_id = "sha256:" + std::string(64, 'c');
    i.repo_digest = images::Reference::parse(name).name() + "@sha256:" + std::string(64, 'a');
    i.config.env = {"PATH=/bin"};
    i.config.cmd = {"/bin/sh"};
    return i;
  }

  std::mutex mu_;
  std::set<std::string> stored_, pullable_, rootfs_;
  std::vector<std::string> pulls_;
};

class FakeNetwork final : public network::SandboxNetwork {
 public:
  network::PodNetwork setUp(const std::string& sandbox_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_) throw std::runtime_error("ip link add: Operation not permitted");
    auto it = ips_.find(sandbox_id);
    if (it == ips_.end()) {
      it = ips_.emplace(sandbox_id, "10.244.0." + std::to_string(next_++)).first;
    }
    ++setups_;
    return {"", it->second, 24, "10.244.0.1", "veth0"};
  }
  void tearDown(const std::string& sandbox_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    ips_.erase(sandbox_id);
  }
  size_t live() {
    std::lock_guard<std::mutex> lock(mu_);
    return ips_.size();
  }
  void failSetUp(bool fail) { fail_ = fail; }
  int setups() const { return setups_; }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> ips_;
  int next_ = 2;
  int setups_ = 0;
  bool fail_ = false;
};

// Probe outcomes by (container id prefix match on name, kind): success unless set otherwise.
class FakeProber final : public prober::ProbeRunner {
 public:
  prober::ProbeOutcome run(const api::core::v1::Probe& probe,
                           const prober::ProbeTarget& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string key = target.container->name() + "/" + handler(probe);
    ++runs_[key];
    auto it = results_.find(key);
    const bool ok = it == results_.end() || it->second;
    return {ok, ok ? "" : "scripted failure"};
  }
  // `handler`: the first word of the probe's exec command (tests name them after the kind).
  void set(const std::string& container, const std::string& handler_word, bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    results_[container + "/" + handler_word] = ok;
  }
  int runs(const std::string& container, const std::string& handler_word) {
    std::lock_guard<std::mutex> lock(mu_);
    return runs_[container + "/" + handler_word];
  }

 private:
  static std::string handler(const api::core::v1::Probe& probe) {
    return probe.has_exec() && probe.exec().command_size() > 0 ? probe.exec().command(0) : "";
  }
  std::mutex mu_;
  std::map<std::string, bool> results_;
  std::map<std::string, int> runs_;
};

}  // namespace skiff::kubelet::testing
