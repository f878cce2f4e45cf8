#include "kubelet/runtime/container_spec.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "control/api/quantity.h"

namespace skiff::kubelet {
namespace {

// A file of the image, resolved inside `rootfs` (symlinks cannot leave it).
std::string readInRoot(const std::string& rootfs, const char* rel) {
  const int root = ::open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return {};
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const int fd = static_cast<int>(::syscall(SYS_openat2, root, rel, &how, sizeof how));
  ::close(root);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

bool parseId(const std::string& s, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > 0xffffffffULL) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// name:x:uid:gid:... lines; returns {field 2, field 3} of the entry whose field 0 or 2 matches.
bool lookup(const std::string& file, const std::string& key, bool by_name, uint32_t& id,
            uint32_t* gid) {
  std::istringstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::string part;
    std::istringstream ls(line);
    while (std::getline(ls, part, ':'))
      f.push_back(part);
    if (f.size() < 3) continue;
    if ((by_name && f[0] == key) || (!by_name && f[2] == key)) {
      if (!parseId(f[2], id)) return false;
      if (gid != nullptr && f.size() > 3) parseId(f[3], *gid);
      return true;
    }
  }
  return false;
}

}  // namespace

std::string expandVars(std::string_view in, const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '$' || i + 1 >= in.size()) {
      out.push_back(in[i]);
      continue;
    }
    const char next = in[i + 1];
    if (next == '$') {  // $$ -> $
      out.push_back('$');
      ++i;
    } else if (next == '(') {
      const size_t close = in.find(')', i + 2);
      if (close == std::string_view::npos) {
        out.append(in.substr(i));
        break;
      }
      const std::string name(in.substr(i + 2, close - i - 2));
      auto it = vars.find(name);
      if (it != vars.end()) {
        out += it->second;
      } else {
        out.append(in.substr(i, close - i + 1));
      }
      i = close;
    } else {
      out.push_back('$');
    }
  }
  return out;
}

void applyContainerSpec(const core::PodSpec& pod, const core::Container& c,
                        const images::ImageConfig& image, const std::string& rootfs,
                        const std::string& field, ContainerConfig& out,
                        const std::vector<std::pair<std::string, std::string>>& extra_env) {
  auto fail = [&](const std::string& sub, const std::string& why) {
    throw std::invalid_argument(field + "." + sub + ": " + why);
  };

  // Environment: image, extra, container (ordered, later wins).
  std::vector<std::pair<std::string, std::string>> env;
  auto setEnv = [&](const std::string& k, const std::string& v) {
    for (auto& [ek, ev] : env) {
      if (ek == k) {
        ev = v;
        return;
      }
    }
    env.emplace_back(k, v);
  };
  for (const auto& kv : image.env) {
    const size_t eq = kv.find('=');
    setEnv(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  std::map<std::string, std::string> defined;  // what $(VAR) may refer to
  for (const auto& [k, v] : extra_env) {
    setEnv(k, v);
    defined[k] = v;
  }
  for (int i = 0; i < c.env_size(); ++i) {
    const auto& e = c.env(i);
    if (e.name().empty()) fail("env[" + std::to_string(i) + "].name", "required");
    if (e.has_value_from()) {
      fail("env[" + std::to_string(i) + "].valueFrom", "not supported by this kubelet yet");
    }
    const std::string v = expandVars(e.value(), defined);
    setEnv(e.name(), v);
    defined[e.name()] = v;
  }
  out.env.clear();
  for (const auto& [k, v] : env)
    out.env.push_back(k + "=" + v);

  // Command line.
  std::vector<std::string> args;
  if (c.command_size() > 0) {
    for (const auto& s : c.command())
      args.push_back(expandVars(s, defined));
    for (const auto& s : c.args())
      args.push_back(expandVars(s, defined));
  } else {
    args = image.entrypoint;
    if (c.args_size() > 0) {
      for (const auto& s : c.args())
        args.push_back(expandVars(s, defined));
    } else {
      args.insert(args.end(), image.cmd.begin(), image.cmd.end());
    }
  }
  if (args.empty()) {
    fail("command", "no command given and the image has neither Entrypoint nor Cmd");
  }
  out.args = std::move(args);
  out.cwd = !c.working_dir().empty()     ? c.working_dir()
            : !image.working_dir.empty() ? image.working_dir
                                         : "/";
  if (out.cwd.front() != '/')
    fail("workingDir", "must be an absolute path, got \"" + out.cwd + "\"");

  // User and groups.
  const auto& sc = c.security_context();
  const auto& psc = pod.security_context();
  std::optional<int64_t> run_as_user = sc.has_run_as_user()    ? std::optional(sc.run_as_user())
                                       : psc.has_run_as_user() ? std::optional(psc.run_as_user())
                                                               : std::nullopt;
  std::optional<int64_t> run_as_group = sc.has_run_as_group()    ? std::optional(sc.run_as_group())
                                        : psc.has_run_as_group() ? std::optional(psc.run_as_group())
                                                                 : std::nullopt;
  uint32_t uid = 0;
  uint32_t gid = 0;
  if (run_as_user) {
    if (*run_as_user < 0 || *run_as_user > 0x7fffffff)
      fail("securityContext.runAsUser", "out of range");
    uid = static_cast<uint32_t>(*run_as_user);
    lookup(readInRoot(rootfs, "etc/passwd"), std::to_string(uid), false, uid, &gid);
  } else if (!image.user.empty()) {
    const size_t colon = image.user.find(':');
    const std::string user = image.user.substr(0, colon);
    const std::string group = colon == std::string::npos ? "" : image.user.substr(colon + 1);
    if (!parseId(user, uid)) {
      if (!lookup(readInRoot(rootfs, "etc/passwd"), user, true, uid, &gid)) {
        fail("image", "the image's User \"" + user + "\" is not in its /etc/passwd");
      }
    } else {
      lookup(readInRoot(rootfs, "etc/passwd"), user, false, uid, &gid);
    }
    if (!group.empty() && !parseId(group, gid)) {
      if (!lookup(readInRoot(rootfs, "etc/group"), group, true, gid, nullptr)) {
        fail("image", "the image's group \"" + group + "\" is not in its /etc/group");
      }
    }
  }
  if (run_as_group) {
    if (*run_as_group < 0 || *run_as_group > 0x7fffffff)
      fail("securityContext.runAsGroup", "out of range");
    gid = static_cast<uint32_t>(*run_as_group);
  }
  const bool non_root = sc.has_run_as_non_root() ? sc.run_as_non_root() : psc.run_as_non_root();
  if (non_root && uid == 0) {
    fail("securityContext.runAsNonRoot", "the container would run as root (uid 0)");
  }
  out.uid = uid;
  out.gid = gid;
  out.additional_gids.clear();
  for (int64_t g : psc.supplemental_groups())
    out.additional_gids.push_back(static_cast<uint32_t>(g));
  if (psc.has_fs_group()) out.additional_gids.push_back(static_cast<uint32_t>(psc.fs_group()));

  // Resources.
  const auto& res = c.resources();
  auto quantity = [&](const google::protobuf::Map<std::string, api::runtime::Quantity>& m,
                      const char* key, const char* which) -> std::optional<api::Quantity> {
    auto it = m.find(key);
    if (it == m.end()) return std::nullopt;
    try {
      return api::Quantity::fromProto(it->second);
    } catch (const api::QuantityError& e) {
      fail(std::string("resources.") + which + "." + key, e.what());
    }
    return std::nullopt;
  };
  const auto cpu_limit = quantity(res.limits(), "cpu", "limits");
  auto cpu_request = quantity(res.requests(), "cpu", "requests");
  if (!cpu_request) cpu_request = cpu_limit;
  const auto mem_limit = quantity(res.limits(), "memory", "limits");
  out.resources = {};
  if (cpu_request) {
    const int64_t milli = cpu_request->milliValue();
    out.resources.cpu_shares = static_cast<uint64_t>(std::max<int64_t>(2, milli * 1024 / 1000));
  }
  if (cpu_limit) {
    const int64_t milli = cpu_limit->milliValue();
    if (milli <= 0) fail("resources.limits.cpu", "must be positive");
    out.resources.cpu_quota_us =
        std::max<int64_t>(1000, milli * static_cast<int64_t>(out.resources.cpu_period_us) / 1000);
  }
  if (mem_limit) {
    const int64_t bytes = mem_limit->value();
    if (bytes <= 0) fail("resources.limits.memory", "must be positive");
    out.resources.memory_limit = bytes;
  }

  // Security.
  out.privileged = sc.privileged();
  out.readonly_rootfs = sc.read_only_root_filesystem();
  out.no_new_privileges = sc.has_allow_privilege_escalation() && !sc.allow_privilege_escalation();
  out.capabilities_add.assign(sc.capabilities().add().begin(), sc.capabilities().add().end());
  out.capabilities_drop.assign(sc.capabilities().drop().begin(), sc.capabilities().drop().end());
}

}  // namespace skiff::kubelet
