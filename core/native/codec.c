/*
 * The byte work of capture, upload and deploy that ran in JavaScript or in lz4-napi,
 * here in C on the caller's buffers (no allocation, no copy):
 *   - lz4Compress / lz4Decompress: LZ4 blocks through the reference library, liblz4
 *     (linked statically: the agent's initramfs copies this addon without its libraries).
 *     The stored form is lz4-napi's `compress_prepend_size` (lz4_flex): the raw length as
 *     4 bytes little-endian, then one LZ4 block; so stores written by either read with
 *     either. Decompression is LZ4_decompress_safe with the destination's capacity set to
 *     the raw length the caller knows: it never writes past it nor reads past the input,
 *     whatever the input holds (the input is untrusted: uploads, packs on disk).
 *   - cdcNext: one step of the FastCDC scanner of core/chunker/fastcdc.ts (the reference),
 *     bit for bit: a 32-bit gear hash h = (h << 1) + gear[byte], cut-point skipping up to
 *     minSize, the hard mask up to avgSize, the easy one up to maxSize, a forced cut at
 *     maxSize, and the same resumable state (scanned offset, hash) when the buffer ends
 *     before a cut. The gear table and the masks come from JavaScript, so both scanners
 *     share one definition of them.
 * Buffers are any Uint8Array (a Buffer is one); the functions return numbers and throw
 * TypeError/RangeError only for misuse (wrong types, sizes out of range).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <limits.h>
#include <lz4.h>
#include <stdint.h>
#include <string.h>
#include "fsx.h"

/* The bytes of a typed array (any element type) or NULL after throwing a TypeError. */
static void *bytes_of(napi_env env, napi_value value, size_t *len, napi_typedarray_type want, const char *what) {
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  if (!is_typed) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  napi_typedarray_type type;
  size_t count;
  void *data;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, value, &type, &count, &data, &ab, &offset) != napi_ok || type != want) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  *len = count;
  /* A zero-length view may have no backing store: any non-NULL pointer will do, nothing is read. */
  return data ? data : (void *)"";
}

static napi_value int_result(napi_env env, int64_t n) {
  napi_value result;
  napi_create_int64(env, n, &result);
  return result;
}

/* lz4Compress(src, dst): bytes written to dst (4-byte LE length of src, then the block), 0 when they do not fit in dst. */
static napi_value lz4_compress(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t src_len, dst_len;
  if (!fsx_get_args(env, info, 2, argv)) return NULL;
  const char *src = bytes_of(env, argv[0], &src_len, napi_uint8_array, "lz4Compress: src must be a Uint8Array");
  if (!src) return NULL;
  char *dst = bytes_of(env, argv[1], &dst_len, napi_uint8_array, "lz4Compress: dst must be a Uint8Array");
  if (!dst) return NULL;
  if (src_len > LZ4_MAX_INPUT_SIZE) {
    napi_throw_range_error(env, NULL, "lz4Compress: input over LZ4_MAX_INPUT_SIZE");
    return NULL;
  }
  if (dst_len <= 4) return int_result(env, 0);
  size_t cap = dst_len - 4 > INT_MAX ? INT_MAX : dst_len - 4;
  /* Returns 0 as soon as the block would not fit in cap: a chunk that does not compress enough costs no copy. */
  int n = LZ4_compress_default(src, dst + 4, (int)src_len, (int)cap);
  if (n <= 0) return int_result(env, 0);
  uint32_t raw = (uint32_t)src_len;
  dst[0] = (char)(raw & 0xff);
  dst[1] = (char)((raw >> 8) & 0xff);
  dst[2] = (char)((raw >> 16) & 0xff);
  dst[3] = (char)((raw >> 24) & 0xff);
  return int_result(env, (int64_t)n + 4);
}

/* lz4Decompress(src, dst): decodes src (4-byte LE length, then the block) into dst; the
 * length must equal dst's and the block must decode to exactly that many bytes. Returns
 * the length, or -1 when src is corrupt, truncated, or of another length. */
static napi_value lz4_decompress(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t src_len, dst_len;
  if (!fsx_get_args(env, info, 2, argv)) return NULL;
  const unsigned char *src = bytes_of(env, argv[0], &src_len, napi_uint8_array, "lz4Decompress: src must be a Uint8Array");
  if (!src) return NULL;
  char *dst = bytes_of(env, argv[1], &dst_len, napi_uint8_array, "lz4Decompress: dst must be a Uint8Array");
  if (!dst) return NULL;
  if (src_len < 5 || src_len - 4 > INT_MAX || dst_len > INT_MAX) return int_result(env, -1);
  uint32_t raw = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 | (uint32_t)src[3] << 24;
  if (raw != dst_len) return int_result(env, -1);
  int n = LZ4_decompress_safe((const char *)src + 4, dst, (int)(src_len - 4), (int)dst_len);
  return int_result(env, n == (int)raw ? n : -1);
}

enum { ST_MIN, ST_AVG, ST_MAX, ST_MASK_HARD, ST_MASK_EASY, ST_SCANNED, ST_HASH, ST_COUNT };

/* cdcNext(buf, gear: Int32Array(256), state: Int32Array(7)): the length of the chunk that
 * starts at buf[0], or -1 when buf ends first (state keeps the scan position and hash).
 * state = [minSize, avgSize, maxSize, maskHard, maskEasy, scanned, hash]. */
static napi_value cdc_next(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t len, gear_len, state_len;
  if (!fsx_get_args(env, info, 3, argv)) return NULL;
  const uint8_t *buf = bytes_of(env, argv[0], &len, napi_uint8_array, "cdcNext: buf must be a Uint8Array");
  if (!buf) return NULL;
  const uint32_t *gear = bytes_of(env, argv[1], &gear_len, napi_int32_array, "cdcNext: gear must be an Int32Array");
  if (!gear) return NULL;
  int32_t *st = bytes_of(env, argv[2], &state_len, napi_int32_array, "cdcNext: state must be an Int32Array");
  if (!st) return NULL;
  if (gear_len != 256 || state_len != ST_COUNT || st[ST_MIN] < 0 || st[ST_MIN] > st[ST_AVG] || st[ST_AVG] > st[ST_MAX]) {
    napi_throw_range_error(env, NULL, "cdcNext: gear must hold 256 values and state 7 with min <= avg <= max");
    return NULL;
  }
  size_t min = (size_t)st[ST_MIN], avg = (size_t)st[ST_AVG], max = (size_t)st[ST_MAX];
  if (len <= min) return int_result(env, -1);
  uint32_t h = (uint32_t)st[ST_HASH];
  const uint32_t mask_hard = (uint32_t)st[ST_MASK_HARD], mask_easy = (uint32_t)st[ST_MASK_EASY];
  size_t i = (size_t)st[ST_SCANNED] > min ? (size_t)st[ST_SCANNED] : min;
  size_t hard_end = len < avg ? len : avg;
  for (; i < hard_end; i++) {
    h = (h << 1) + gear[buf[i]];
    if (!(h & mask_hard)) goto cut;
  }
  size_t easy_end = len < max ? len : max;
  for (; i < easy_end; i++) {
    h = (h << 1) + gear[buf[i]];
    if (!(h & mask_easy)) goto cut;
  }
  if (easy_end == max) {
    st[ST_SCANNED] = st[ST_HASH] = 0;
    return int_result(env, (int64_t)max);
  }
  st[ST_SCANNED] = (int32_t)i;
  st[ST_HASH] = (int32_t)h;
  return int_result(env, -1);
cut:
  st[ST_SCANNED] = st[ST_HASH] = 0;
  return int_result(env, (int64_t)i + 1);
}

void fsx_init_codec(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lz4Compress", NULL, lz4_compress, NULL, NULL, NULL, napi_default, NULL},
      {"lz4Decompress", NULL, lz4_decompress, NULL, NULL, NULL, napi_default, NULL},
      {"cdcNext", NULL, cdc_next, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
