#!/usr/bin/python3
"""A stand-in for systemd-logind on a private D-Bus, for the graceful node shutdown tests.

Usage: fake_logind.py BUS_ADDRESS [INHIBIT_DELAY_MAX_USEC [CONF_DIR]]

Owns org.freedesktop.login1 and serves, on /org/freedesktop/login1:
  org.freedesktop.login1.Manager.Inhibit(ssss) -> h   the write end of a fresh pipe; the lock is
                                                     released when every copy of it is closed
  org.freedesktop.DBus.Properties.Get("org.freedesktop.login1.Manager", "InhibitDelayMaxUSec")
  signal org.freedesktop.login1.Manager.PrepareForShutdown(b)
and, as systemd (org.freedesktop.systemd1 on /org/freedesktop/systemd1):
  org.freedesktop.systemd1.Manager.KillUnit(ssi)    SIGHUP (1) to systemd-logind.service reloads
      the configuration 100 ms later, as logind does on its own time: InhibitDelayMaxSec from the
      [Login] sections of CONF_DIR/*.conf in name order (the last one wins; "30", "30s", "2min",
      "500ms"); without CONF_DIR or such a line the limit stays as it is. Other units or signals
      answer org.freedesktop.DBus.Error.NotSupported.

Commands, one a line on stdin: "shutdown" (PrepareForShutdown(true)), "cancel" (false), "quit".
Reports, one a line on stdout (flushed): "ready", "inhibit WHAT|WHO|WHY|MODE N" (N: locks held
now), "released N" (a lock's every fd closed; N: locks still held), "sent shutdown|cancel",
"killunit UNIT WHOM SIGNAL", "reloaded InhibitDelayMaxUSec=N".
"""
import glob
import re
import os
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

MANAGER = "org.freedesktop.login1.Manager"
SYSTEMD = "org.freedesktop.systemd1.Manager"
UNITS = {"us": 1, "ms": 1000, "s": 1000000, "sec": 1000000, "m": 60000000, "min": 60000000,
         "h": 3600000000}


def usec_of(text):
    """logind's time span ("30", "30s", "2min", "500ms") in microseconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", text)
    if not m or m.group(2) not in UNITS and m.group(2) != "":
        raise ValueError("not a time span: " + text)
    return int(m.group(1)) * UNITS.get(m.group(2) or "s")


def configured_delay(conf_dir):
    """InhibitDelayMaxSec in microseconds from CONF_DIR/*.conf, or None."""
    found = None
    for path in sorted(glob.glob(conf_dir + "/*.conf")):
        section = ""
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1]
                elif section == "Login" and line.startswith("InhibitDelayMaxSec="):
                    found = usec_of(line.split("=", 1)[1])
    return found


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Manager(dbus.service.Object):
    def __init__(self, bus, delay_usec):
        super().__init__(bus, "/org/freedesktop/login1")
        self.delay_usec = delay_usec
        self.held = 0

    @dbus.service.method(MANAGER, in_signature="ssss", out_signature="h")
    def Inhibit(self, what, who, why, mode):
        r, w = os.pipe()
        self.held += 1
        say("inhibit %s|%s|%s|%s %d" % (what, who, why, mode, self.held))
        GLib.io_add_watch(r, GLib.IO_HUP | GLib.IO_ERR, self._closed)
        fd = dbus.types.UnixFd(w)  # a duplicate; ours is closed at once
        os.close(w)
        return fd

    def _closed(self, r, _condition):
        os.close(r)
        self.held -= 1
        say("released %d" % self.held)
        return False

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        if interface == MANAGER and prop == "InhibitDelayMaxUSec":
            return dbus.UInt64(self.delay_usec)
        raise dbus.exceptions.DBusException(
            "org.freedesktop.DBus.Error.UnknownProperty", "no property " + prop)

    @dbus.service.signal(MANAGER, signature="b")
    def PrepareForShutdown(self, start):
        pass


class Systemd(dbus.service.Object):
    def __init__(self, bus, manager, conf_dir):
        super().__init__(bus, "/org/freedesktop/systemd1")
        self.manager = manager
        self.conf_dir = conf_dir

    @dbus.service.method(SYSTEMD, in_signature="ssi", out_signature="")
    def KillUnit(self, unit, whom, signal):
        say("killunit %s %s %d" % (unit, whom, signal))
        if unit != "systemd-logind.service" or signal != 1:
            raise dbus.exceptions.DBusException(
                "org.freedesktop.DBus.Error.NotSupported", "only SIGHUP to systemd-logind")
        GLib.timeout_add(100, self._reload)

    def _reload(self):
        if self.conf_dir:
            delay = configured_delay(self.conf_dir)
            if delay is not None:
                self.manager.delay_usec = delay
        say("reloaded InhibitDelayMaxUSec=%d" % self.manager.delay_usec)
        return False


def main():
    address = sys.argv[1]
    delay = int(sys.argv[2]) if len(sys.argv) > 2 else 30 * 1000 * 1000
    conf_dir = sys.argv[3] if len(sys.argv) > 3 else ""
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    name = dbus.service.BusName("org.freedesktop.login1", bus, do_not_queue=True)
    manager = Manager(bus, delay)
    systemd_name = dbus.service.BusName("org.freedesktop.systemd1", bus, do_not_queue=True)
    systemd = Systemd(bus, manager, conf_dir)
    loop = GLib.MainLoop()

    def command(_fd, _condition):
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            loop.quit()
            return False
        word = line.strip()
        if word in ("shutdown", "cancel"):
            manager.PrepareForShutdown(word == "shutdown")
            say("sent " + word)
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, command)
    say("ready")
    loop.run()
    del systemd, systemd_name, name


if __name__ == "__main__":
    main()
