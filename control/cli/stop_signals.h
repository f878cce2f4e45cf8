#pragma once

#include <csignal>

// Daemons (`skiff server`, `agent`, `up`, `scheduler`, ...) stop on SIGINT or SIGTERM. Blocking
// both before any thread starts makes every later thread inherit the mask, so that one sigwait()
// sees them instead of a random thread dying of them.

namespace skiff::cli {

sigset_t blockStopSignals();
// Blocks until SIGINT or SIGTERM arrives; returns it.
int waitForStopSignal(const sigset_t& signals);
// "SIGINT", "SIGTERM", or the system's name for another signal.
const char* stopSignalName(int sig);

}  // namespace skiff::cli
