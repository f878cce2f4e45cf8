#include "control/cli/resident_code.h"

#include "control/cli/stop_signals.h"

#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string_view>

namespace skiff::cli {
namespace {

struct Walk {
  uintptr_t page = 0;
  uintptr_t vdso = 0;
  ReleasedCode released;
};

// Only segments that no one writes: a RELRO range was written by the dynamic linker before it
// became read-only, and dropping those pages would bring back the unrelocated file contents.
int releaseObject(dl_phdr_info* info, size_t /*size*/, void* data) {
  auto& walk = *static_cast<Walk*>(data);
  // The vDSO is the kernel's, not a file mapping.
  if (walk.vdso != 0 && info->dlpi_addr == walk.vdso) return 0;
  if (std::string_view(info->dlpi_name).find("linux-vdso") != std::string_view::npos) return 0;
  uintptr_t relro_begin = 0;
  uintptr_t relro_end = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_GNU_RELRO) {
      relro_begin = info->dlpi_addr + ph.p_vaddr;
      relro_end = relro_begin + ph.p_memsz;
    }
    // No text relocations either: then a code page may have been written as well.
    if (ph.p_type == PT_DYNAMIC) {
      for (auto* d = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
           d->d_tag != DT_NULL; ++d) {
        if (d->d_tag == DT_TEXTREL) return 0;
        if (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_TEXTREL) != 0) return 0;
      }
    }
  }
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0 || ph.p_filesz == 0) continue;
    uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    // Only the part backed by the file: past p_filesz the kernel maps anonymous zero pages.
    uintptr_t end = begin + ph.p_filesz;
    if (relro_end > relro_begin && begin < relro_end && relro_begin < end) {
      // A read-only segment that holds RELRO: keep it all (lld puts RELRO in a segment of its
      // own, so this is rare).
      continue;
    }
    // Whole pages inside the segment: its first and last page may be shared with a neighbour.
    begin = (begin + walk.page - 1) & ~(walk.page - 1);
    end &= ~(walk.page - 1);
    if (end <= begin) continue;
    if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED) == 0) {
      walk.released.bytes += end - begin;
      ++walk.released.segments;
    }
  }
  return 0;
}

}  // namespace

ReleasedCode releaseStartupCode() {
  Walk walk;
  walk.page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  walk.vdso = static_cast<uintptr_t>(getauxval(AT_SYSINFO_EHDR));
  dl_iterate_phdr(releaseObject, &walk);
  return walk.released;
}

int waitForStopSignalReleasingStartupCode(const sigset_t& signals,
                                          std::chrono::milliseconds release_after) {
  const auto deadline = std::chrono::steady_clock::now() + release_after;
  for (;;) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::nanoseconds::zero()) break;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    timespec timeout{.tv_sec = static_cast<time_t>(ns / 1000000000),
                     .tv_nsec = static_cast<long>(ns % 1000000000)};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig > 0) return sig;
    if (errno != EINTR && errno != EAGAIN) break;
  }
  releaseStartupCode();
  return waitForStopSignal(signals);
}

}  // namespace skiff::cli
