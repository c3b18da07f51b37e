/*
 * glibc malloc's thresholds pinned when the addon loads (fsx_pin_malloc, called by fsx.c's
 * init), so every Cloner process that touches files or chunks (the CLI's captures and
 * exports, the server, the agent) gets them.
 *
 * Why: glibc serves an allocation of M_MMAP_THRESHOLD bytes or more (128 KiB at start) with
 * its own mmap, returned to the kernel on free. The threshold is dynamic: freeing such a
 * block raises it to that block's size (up to 32 MiB). Cloner's chunk slabs (4 and ~9 MiB,
 * core/store/wire.ts FrameSlabs), read windows and fetch frames are such blocks: after the
 * first slab a pool let go, every later one came from the heap arena, and freed space in the
 * middle of the heap is never returned, so the resident size ratcheted up with the tree's
 * size. bench:peers --scale 8: a capture CLI grew to 321-328 MB with 32-50 MB of V8 heap
 * and ~110 MB of ArrayBuffers; pinned (and the CLI's slab pools sized to what is in flight,
 * core/store/http.ts) it peaks at 253-274 MB, and at 218-237 MB instead of 245-274 on the
 * 1x tree. A pinned threshold makes every block above it a fresh mmap, faulted in anew:
 * with the pools as they were (4 MiB slabs let go and made again 85-150 times a capture),
 * the 1x capture took 124-128k minor faults instead of 67-72k unpinned; with the pools sized,
 * 54-58k.
 * (The mechanism and this remedy: mallopt(3); the same fix in seaweedfs#11255, lighthouse#2937.)
 *
 * Pinned: M_MMAP_THRESHOLD 1 MiB (the slabs and windows stay mmap'd; the many smaller chunk
 * buffers stay in the arenas, where a free list reuses them) and M_TRIM_THRESHOLD 16 MiB
 * (setting one turns off the dynamic adjustment of both, and a 128 KiB trim threshold would
 * give the heap's top back, to be faulted in again, after every burst; with the mmap
 * threshold alone set, a 1x capture took ~1.4 s more CPU in two A/B pairs). An
 * administrator's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ or glibc.malloc
 * tunable wins: then nothing is pinned. Without glibc (musl), nothing is done.
 * `mallocPinned` on the addon's exports says whether the pin was made.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "fsx.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define PIN_MMAP_THRESHOLD (1024 * 1024)
#define PIN_TRIM_THRESHOLD (16 * 1024 * 1024)

static int pinned = -1;

static int pin_malloc(void) {
#ifdef __GLIBC__
  const char *tunables = getenv("GLIBC_TUNABLES");
  if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_") || (tunables && strstr(tunables, "glibc.malloc."))) return 0;
  return mallopt(M_MMAP_THRESHOLD, PIN_MMAP_THRESHOLD) == 1 && mallopt(M_TRIM_THRESHOLD, PIN_TRIM_THRESHOLD) == 1;
#else
  return 0;
#endif
}

void fsx_pin_malloc(napi_env env, napi_value exports) {
  /* Once a process: the codec pool's worker threads load the addon again. */
  if (pinned < 0) pinned = pin_malloc();
  napi_value value;
  napi_get_boolean(env, pinned == 1, &value);
  napi_set_named_property(env, exports, "mallocPinned", value);
}
