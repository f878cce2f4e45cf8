#include "control/cli/app.h"

// The allocator's settings when the binary is linked with jemalloc (SKIFF_MALLOC=jemalloc, the
// default; with the C library's malloc nothing reads this). The skiff server runs ~250 threads
// (one per connection, the watch caches' pumps, the in-process informers): jemalloc's default of
// 4 arenas per CPU and thread caches of objects up to 32 KiB keep memory spread over many arenas
// and idle threads' caches. Side by side under `skiff bench soak --hollow` (180 s, two runs each)
// 2 arenas, thread caches up to 4 KiB and background purging ended at 123-125 MB against
// 131-136 MB with the defaults; background purging alone made no difference. Each of those
// threads' caches also holds up to 200 objects per size class for as long as the thread lives, and
// most of them sleep in a queue or a watch: at most 16 small and 4 large objects per class ended a
// 600 s soak at 113 MB against 124-129 MB, with the same CPU per pod create (`skiff bench
// apiserver`, 64 clients, in turns: 319/329 against 350/325 us); without thread caches at all the
// soak ended at 97 MB but a create cost 405-409 us. MALLOC_CONF in the environment still
// overrides each setting.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's interface.
const char* malloc_conf =
    "background_thread:true,narenas:2,tcache_max:4096,tcache_nslots_small_max:16,"
    "tcache_nslots_large:4";
}

int main(int argc, char** argv) {
  skiff::cli::App app;
  return app.run(argc, argv);
}
