#include "kubelet/pods/service_env.h"

#include <cctype>
#include <map>

namespace skiff::kubelet {
namespace core = api::core::v1;
namespace {

// Kubernetes' makeEnvVariableName: upper case, '-' as '_'.
std::string envName(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// v1helper.IsServiceIPSet.
bool hasClusterIp(const core::Service& s) {
  return !s.spec().cluster_ip().empty() && s.spec().cluster_ip() != "None";
}

void addService(const core::Service& s, std::map<std::string, std::string>& out) {
  if (s.spec().ports_size() == 0) return;
  const std::string prefix = envName(s.metadata().name());
  const std::string& ip = s.spec().cluster_ip();
  const std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
  out[prefix + "_SERVICE_HOST"] = ip;
  out[prefix + "_SERVICE_PORT"] = std::to_string(s.spec().ports(0).port());
  for (const auto& p : s.spec().ports()) {
    if (!p.name().empty()) {
      out[prefix + "_SERVICE_PORT_" + envName(p.name())] = std::to_string(p.port());
    }
  }
  for (int i = 0; i < s.spec().ports_size(); ++i) {
    const auto& p = s.spec().ports(i);
    const std::string protocol = p.protocol().empty() ? "TCP" : p.protocol();
    const std::string port = std::to_string(p.port());
    const std::string url = lower(protocol) + "://" + host + ":" + port;
    if (i == 0) out[prefix + "_PORT"] = url;  // Docker's link variable for the first port
    const std::string port_prefix = prefix + "_PORT_" + port + "_" + upper(protocol);
    out[port_prefix] = url;
    out[port_prefix + "_PROTO"] = lower(protocol);
    out[port_prefix + "_PORT"] = port;
    out[port_prefix + "_ADDR"] = ip;
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> serviceEnvVars(
    const core::Pod& pod, const std::vector<core::Service>& services) {
  const std::string& ns = pod.metadata().namespace_();
  const bool links = !pod.spec().has_enable_service_links() || pod.spec().enable_service_links();
  // By name: the pod's namespace's Services, and the master services of "default" unless the
  // pod's namespace has one of that name.
  std::map<std::string, const core::Service*> chosen;
  for (const auto& s : services) {
    if (!hasClusterIp(s)) continue;
    const std::string& name = s.metadata().name();
    if (links && s.metadata().namespace_() == ns) chosen[name] = &s;
  }
  for (const auto& s : services) {
    if (!hasClusterIp(s)) continue;
    if (s.metadata().namespace_() == "default" && s.metadata().name() == "kubernetes")
      chosen.try_emplace(s.metadata().name(), &s);
  }
  std::map<std::string, std::string> vars;
  for (const auto& [name, s] : chosen)
    addService(*s, vars);
  return {vars.begin(), vars.end()};
}

}  // namespace skiff::kubelet
