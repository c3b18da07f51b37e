/* Shared between the fsx addon's C files (fsx.c registers the others' functions). */
#ifndef FSX_H
#define FSX_H
#define NAPI_VERSION 8
#include <node_api.h>

/* Reads `want` arguments into argv; throws a TypeError and returns 0 when fewer were passed. */
int fsx_get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
/* Throws an Error for errno with `code`, `syscall` and `errno` as Node's fs errors; returns NULL. */
napi_value fsx_throw_errno(napi_env env, const char *syscall, const char *path);
/* A string (UTF-8) or Buffer (bytes as they are) argument as a C string; throws and returns 0 when too long or holding a NUL. */
int fsx_get_string(napi_env env, napi_value value, char *buf, size_t size);
/* Adds lz4Compress, lz4Decompress and cdcNext (codec.c). */
void fsx_init_codec(napi_env env, napi_value exports);
/* Adds lstatInto and preadNowait (stat.c). */
void fsx_init_stat(napi_env env, napi_value exports);
/* Pins glibc malloc's mmap and trim thresholds, once a process, and adds `mallocPinned` (memory.c). */
void fsx_pin_malloc(napi_env env, napi_value exports);
#endif
