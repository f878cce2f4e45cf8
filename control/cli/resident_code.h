#pragma once

// Resident memory of the process's code and read-only data.
//
// `skiff` is one binary for every command, so its start-up runs the static initializers of every
// component (protobuf descriptors, flag tables, registries). Each one faults in a page of code, and
// the kernel maps the 64 KiB around each fault from the page cache: after start-up nearly the whole
// 9 MB text segment (and most of libcrypto, libprotobuf, libgrpc) counts in the resident set of a
// `skiff agent` that afterwards runs a small part of it.

#include <chrono>
#include <csignal>
#include <cstddef>

namespace skiff::cli {

struct ReleasedCode {
  // Bytes of read-only segments (text, read-only data) given back, and how many segments.
  size_t bytes = 0;
  size_t segments = 0;
};

// Drops this process's page-table entries of every loaded object's read-only, non-RELRO PT_LOAD
// segments (madvise MADV_DONTNEED). Those pages are never written, so nothing is lost: they stay
// in the page cache and the next use faults them back in. Call it once start-up is over; the
// resident set then holds the code the process actually goes on running.
ReleasedCode releaseStartupCode();

// Registration, informers' first lists and first syncs of a daemon are over by then.
inline constexpr std::chrono::seconds kStartupCodeReleaseDelay{20};

// waitForStopSignal (stop_signals.h) for daemons: blocks until SIGINT or SIGTERM and returns it;
// if none came within `release_after`, releases the start-up code once on the way.
int waitForStopSignalReleasingStartupCode(
    const sigset_t& signals, std::chrono::milliseconds release_after = kStartupCodeReleaseDelay);

}  // namespace skiff::cli
