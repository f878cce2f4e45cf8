#include "kubelet/agent/logind_inhibitor.h"

#include <dbus/dbus.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>

namespace skiff::kubelet {

namespace {

constexpr const char* kLogindService = "org.freedesktop.login1";
constexpr const char* kLogindPath = "/org/freedesktop/login1";
constexpr const char* kLogindInterface = "org.freedesktop.login1.Manager";
constexpr const char* kSystemdService = "org.freedesktop.systemd1";
constexpr const char* kSystemdPath = "/org/freedesktop/systemd1";
constexpr const char* kSystemdInterface = "org.freedesktop.systemd1.Manager";
constexpr const char* kShutdownMatch =
    "type='signal',interface='org.freedesktop.login1.Manager',member='PrepareForShutdown'";

// A DBusError freed on scope exit.
struct Error {
  Error() { dbus_error_init(&e); }
  ~Error() { dbus_error_free(&e); }
  Error(const Error&) = delete;
  Error& operator=(const Error&) = delete;
  bool set() const { return dbus_error_is_set(&e) != 0; }
  std::string text() const {
    return set() ? std::string(e.name) + ": " + (e.message != nullptr ? e.message : "") : "";
  }
  DBusError e;
};

// A DBusMessage unreferenced on scope exit.
struct Message {
  explicit Message(DBusMessage* message = nullptr) : m(message) {}
  ~Message() {
    if (m != nullptr) dbus_message_unref(m);
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  DBusMessage* m;
};

}  // namespace

LogindInhibitor::LogindInhibitor(LogindInhibitorOptions options) : options_(std::move(options)) {
  Error err;
  if (options_.bus_address.empty()) {
    conn_ = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err.e);
  } else {
    conn_ = dbus_connection_open_private(options_.bus_address.c_str(), &err.e);
    if (conn_ != nullptr && dbus_bus_register(conn_, &err.e) == 0) {
      dbus_connection_close(conn_);
      dbus_connection_unref(conn_);
      conn_ = nullptr;
    }
  }
  const std::string where =
      options_.bus_address.empty() ? "the system D-Bus" : "D-Bus " + options_.bus_address;
  if (conn_ == nullptr) throw std::runtime_error("cannot connect to " + where + ": " + err.text());
  dbus_connection_set_exit_on_disconnect(conn_, FALSE);
  if (dbus_bus_name_has_owner(conn_, kLogindService, &err.e) == 0) {
    std::string why = err.set() ? err.text() : std::string("nobody owns ") + kLogindService;
    dbus_connection_close(conn_);
    dbus_connection_unref(conn_);
    conn_ = nullptr;
    throw std::runtime_error("no systemd-logind on " + where + " (" + why + ")");
  }
  dbus_bus_add_match(conn_, kShutdownMatch, &err.e);
  if (err.set()) {
    std::string why = err.text();
    dbus_connection_close(conn_);
    dbus_connection_unref(conn_);
    conn_ = nullptr;
    throw std::runtime_error("subscribing to PrepareForShutdown on " + where + ": " + why);
  }
}

LogindInhibitor::~LogindInhibitor() {
  release();
  if (conn_ != nullptr) {
    dbus_connection_close(conn_);
    dbus_connection_unref(conn_);
  }
}

std::chrono::microseconds LogindInhibitor::inhibitDelayMax() {
  Message call(dbus_message_new_method_call(kLogindService, kLogindPath,
                                            "org.freedesktop.DBus.Properties", "Get"));
  if (call.m == nullptr) throw std::runtime_error("D-Bus: out of memory");
  const char* iface = kLogindInterface;
  const char* prop = "InhibitDelayMaxUSec";
  dbus_message_append_args(call.m, DBUS_TYPE_STRING, &iface, DBUS_TYPE_STRING, &prop,
                           DBUS_TYPE_INVALID);
  Error err;
  Message reply(dbus_connection_send_with_reply_and_block(
      conn_, call.m, static_cast<int>(options_.call_timeout.count()), &err.e));
  if (reply.m == nullptr) throw std::runtime_error("logind InhibitDelayMaxUSec: " + err.text());
  DBusMessageIter it;
  DBusMessageIter variant;
  if (dbus_message_iter_init(reply.m, &it) == 0 ||
      dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_VARIANT) {
    throw std::runtime_error("logind InhibitDelayMaxUSec: the reply is not a variant");
  }
  dbus_message_iter_recurse(&it, &variant);
  if (dbus_message_iter_get_arg_type(&variant) != DBUS_TYPE_UINT64) {
    throw std::runtime_error("logind InhibitDelayMaxUSec: not a uint64");
  }
  dbus_uint64_t usec = 0;
  dbus_message_iter_get_basic(&variant, &usec);
  return std::chrono::microseconds(static_cast<int64_t>(usec));
}

void LogindInhibitor::reloadConfiguration() {
  Message call(
      dbus_message_new_method_call(kSystemdService, kSystemdPath, kSystemdInterface, "KillUnit"));
  if (call.m == nullptr) throw std::runtime_error("D-Bus: out of memory");
  const char* unit = "systemd-logind.service";
  const char* whom = "all";
  dbus_int32_t signal = SIGHUP;
  dbus_message_append_args(call.m, DBUS_TYPE_STRING, &unit, DBUS_TYPE_STRING, &whom,
                           DBUS_TYPE_INT32, &signal, DBUS_TYPE_INVALID);
  Error err;
  Message reply(dbus_connection_send_with_reply_and_block(
      conn_, call.m, static_cast<int>(options_.call_timeout.count()), &err.e));
  if (reply.m == nullptr) {
    throw std::runtime_error("reloading logind (systemd KillUnit systemd-logind.service SIGHUP): " +
                             err.text());
  }
}

void LogindInhibitor::acquire(const std::string& who, const std::string& why) {
  if (fd_ >= 0) return;
  Message call(
      dbus_message_new_method_call(kLogindService, kLogindPath, kLogindInterface, "Inhibit"));
  if (call.m == nullptr) throw std::runtime_error("D-Bus: out of memory");
  const char* what = "shutdown";
  const char* who_c = who.c_str();
  const char* why_c = why.c_str();
  const char* mode = "delay";
  dbus_message_append_args(call.m, DBUS_TYPE_STRING, &what, DBUS_TYPE_STRING, &who_c,
                           DBUS_TYPE_STRING, &why_c, DBUS_TYPE_STRING, &mode, DBUS_TYPE_INVALID);
  Error err;
  Message reply(dbus_connection_send_with_reply_and_block(
      conn_, call.m, static_cast<int>(options_.call_timeout.count()), &err.e));
  if (reply.m == nullptr) throw std::runtime_error("logind Inhibit: " + err.text());
  int fd = -1;
  if (dbus_message_get_args(reply.m, &err.e, DBUS_TYPE_UNIX_FD, &fd, DBUS_TYPE_INVALID) == 0) {
    throw std::runtime_error("logind Inhibit: " + err.text());
  }
  fd_ = fd;  // libdbus handed over a duplicate of its own
}

void LogindInhibitor::release() {
  if (fd_ < 0) return;
  ::close(fd_);
  fd_ = -1;
}

std::optional<bool> LogindInhibitor::waitForShutdownSignal(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    // What was read already (also during a method call's wait) comes first.
    while (DBusMessage* raw = dbus_connection_pop_message(conn_)) {
      Message msg(raw);
      if (dbus_message_is_signal(msg.m, DBUS_INTERFACE_LOCAL, "Disconnected") != 0) {
        throw std::runtime_error("D-Bus: disconnected from the bus");
      }
      if (dbus_message_is_signal(msg.m, kLogindInterface, "PrepareForShutdown") == 0) continue;
      dbus_bool_t start = FALSE;
      Error err;
      if (dbus_message_get_args(msg.m, &err.e, DBUS_TYPE_BOOLEAN, &start, DBUS_TYPE_INVALID) == 0) {
        continue;  // not the signature logind sends
      }
      return start != FALSE;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (dbus_connection_read_write(conn_, static_cast<int>(left.count())) == 0) {
      throw std::runtime_error("D-Bus: disconnected from the bus");
    }
  }
}

}  // namespace skiff::kubelet
