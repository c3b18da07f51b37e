/**
 * File names are bytes, not text: Linux allows any bytes but "/" and NUL, and old tarballs,
 * Samba shares and unzip leave names that are not UTF-8 (Latin-1 "caf\xe9"). Manifests are
 * JSON, whose strings are Unicode, so every name (and symlink target) is carried in a
 * lossless escaped form, Python's "surrogateescape" (PEP 383):
 *   - bytes that form valid UTF-8 are their characters, so UTF-8 names read as themselves
 *     and a manifest of UTF-8 names is byte-for-byte what it always was;
 *   - each byte that is not part of valid UTF-8 (0x80-0xFF) becomes the lone surrogate
 *     U+DC80-U+DCFF, which valid UTF-8 never produces, so no two byte strings share a form.
 * `decodeName` maps bytes to that form, `encodeName` maps it back. A string is a valid
 * (canonical) name form only when decodeName(encodeName(s)) === s: other lone surrogates
 * (the "\ud800" of sec-01, which Buffer.from would write as U+FFFD, the same bytes as a
 * real "\ufffd") and escapes of bytes that would decode as UTF-8 ("\udcc3\udca9" vs "é")
 * are refused, so distinct manifest names are always distinct names on disk.
 */
import { isUtf8 } from 'node:buffer';

/** The escaped form of a name's bytes (see the module comment). */
export function decodeName(bytes: Uint8Array): string {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buf)) return buf.toString('utf8');
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const n = utf8SequenceLength(buf, i);
    if (n > 0) {
      out += buf.toString('utf8', i, i + n);
      i += n;
    } else {
      out += String.fromCharCode(0xdc00 + buf[i]);
      i++;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at `i` (RFC 3629: no overlongs, no surrogates, at most U+10FFFF), or 0. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i];
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k] >= lo && b[i + k] <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** The bytes of an escaped name (or path): U+DC80-U+DCFF back to single bytes, the rest UTF-8. */
export function encodeName(name: string): Buffer {
  if (name.isWellFormed()) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    const lone = code >= 0xdc80 && code <= 0xdcff && !(i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff);
    if (lone) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.of(code - 0xdc00));
    } else run += name[i];
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** Is `name` the canonical escaped form of some bytes (so it names exactly those bytes)? */
export function isCanonicalName(name: string): boolean {
  if (name.isWellFormed()) return true;
  return decodeName(encodeName(name)) === name;
}

/** Does the escaped form hold bytes that are not UTF-8 (a manifest holding it is format 2)? */
export const hasEscapedBytes = (name: string): boolean => !name.isWellFormed();

/** A name or path for messages: escaped bytes shown as \xNN, control characters too. */
export function displayName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\udc80-\udcff]|[\u0000-\u001f\u007f]/g, (c) => {
    const code = c.charCodeAt(0);
    return `\\x${(code >= 0xdc00 ? code - 0xdc00 : code).toString(16).padStart(2, '0')}`;
  });
}
