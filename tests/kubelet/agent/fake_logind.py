#!/usr/bin/python3
"""A stand-in for systemd-logind on a private D-Bus, for the graceful node shutdown tests.

Usage: fake_logind.py BUS_ADDRESS [INHIBIT_DELAY_MAX_USEC]

Owns org.freedesktop.login1 and serves, on /org/freedesktop/login1:
  org.freedesktop.login1.Manager.Inhibit(ssss) -> h   the write end of a fresh pipe; the lock is
                                                     released when every copy of it is closed
  org.freedesktop.DBus.Properties.Get("org.freedesktop.login1.Manager", "InhibitDelayMaxUSec")
  signal org.freedesktop.login1.Manager.PrepareForShutdown(b)

Commands, one a line on stdin: "shutdown" (PrepareForShutdown(true)), "cancel" (false), "quit".
Reports, one a line on stdout (flushed): "ready", "inhibit WHAT|WHO|WHY|MODE N" (N: locks held
now), "released N" (a lock's every fd closed; N: locks still held), "sent shutdown|cancel".
"""
import os
import sys

import dbus
import dbus.mainloop.glib
import dbus.service
from gi.repository import GLib

MANAGER = "org.freedesktop.login1.Manager"


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


def main():
    address = sys.argv[1]
    delay = int(sys.argv[2]) if len(sys.argv) > 2 else 30 * 1000 * 1000
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    name = dbus.service.BusName("org.freedesktop.login1", bus, do_not_queue=True)
    manager = Manager(bus, delay)
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
    del name


if __name__ == "__main__":
    main()
