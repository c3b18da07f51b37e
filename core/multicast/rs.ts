/**
 * Reed-Solomon erasure coding over GF(2^8) for multicast repair: a systematic code whose
 * parity rows are rows of a Cauchy matrix, so parity row j of a group of k equal-length
 * pieces d_0..d_{k-1} is  p_j = sum_i d_i / (x_j + y_i)  with y_i = i and x_j = 255 - j.
 * Every square submatrix of a Cauchy matrix is invertible, so ANY L received parity rows
 * rebuild ANY L lost pieces: one repair datagram fixes a different loss at every receiver,
 * and rows sent in different rounds add up (a receiver keeps the rows it got).
 * Rows and pieces share the 256 field elements: k + rows <= 256 (MAX_GROUP keeps k <= 128).
 *
 * Decoding: subtract the known pieces from each held row (syndromes), invert the L x L
 * Cauchy submatrix of the lost columns by Gauss-Jordan, multiply. Arithmetic uses a full
 * 64 KiB multiplication table: one lookup and one XOR per byte (~300 MB/s in V8 here).
 */

/** Most data pieces in one parity group (wire.ts groups a chunk's pieces in runs of at most this). */
export const MAX_GROUP = 128;
/** Most parity rows per group (row j uses field element 255 - j; data uses 0..MAX_GROUP-1). */
export const MAX_ROWS = 256 - MAX_GROUP;

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
}
const mul = (a: number, b: number) => (a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]]);
const inv = (a: number) => EXP[255 - LOG[a]];
/** MUL[a * 256 + b] = a * b in GF(2^8). */
const MUL = new Uint8Array(65536);
for (let a = 1; a < 256; a++) for (let b = 1; b < 256; b++) MUL[a * 256 + b] = mul(a, b);

/**
 * The coefficient of data piece i in parity row j: the Cauchy entry 1/(x_j + y_i) with each
 * column scaled by 1/(x_0 + y_i)'s inverse, so row 0 is all ones (scaling a column keeps
 * every square submatrix invertible). Row 0 is then a plain XOR of the pieces, and so is
 * rebuilding one lost piece from it: the common repair (a receiver losing 1% of a 128-piece
 * group lacks 0-3) costs no multiplication table look-ups.
 */
export function coefficient(row: number, i: number): number {
  return mul(inv((255 - row) ^ i), 255 ^ i);
}

/** out ^= c * src (bytes past src's end count as zero). */
function mulAdd(out: Uint8Array, src: Uint8Array, c: number): void {
  if (c === 0) return;
  const n = Math.min(out.length, src.length);
  if (c === 1) {
    for (let x = 0; x < n; x++) out[x] ^= src[x];
    return;
  }
  const base = c * 256;
  for (let x = 0; x < n; x++) out[x] ^= MUL[base + src[x]];
}

/** Parity row `row` of `pieces` (each at most `size` bytes, shorter ones zero-padded). */
export function parityRow(pieces: Uint8Array[], row: number, size: number): Buffer {
  if (pieces.length > MAX_GROUP || row < 0 || row >= MAX_ROWS) throw new RangeError(`parity row ${row} of ${pieces.length} pieces is out of range`);
  const out = Buffer.alloc(size);
  pieces.forEach((p, i) => mulAdd(out, p, coefficient(row, i)));
  return out;
}

/**
 * Rebuilds lost pieces of a group of `k`: `pieces[i]` is piece i (zero-padded to `size`)
 * or null when lost; `rows` maps a parity row index to its bytes. Needs at least as many
 * rows as lost pieces; returns the rebuilt pieces by index (each `size` bytes).
 */
export function recover(pieces: Array<Uint8Array | null>, rows: Map<number, Uint8Array>, size: number): Map<number, Buffer> {
  const lost = pieces.flatMap((p, i) => (p ? [] : [i]));
  const use = [...rows.keys()].slice(0, lost.length);
  if (use.length < lost.length) throw new RangeError(`${lost.length} pieces lost, ${rows.size} parity rows held`);
  const L = lost.length;
  // Syndromes: each held row minus the pieces that are here.
  const syn = use.map((row) => {
    const s = Buffer.from(rows.get(row)!.subarray(0, size));
    pieces.forEach((p, i) => p && mulAdd(s, p, coefficient(row, i)));
    return s;
  });
  // Invert M[a][b] = coefficient(use[a], lost[b]) (Gauss-Jordan on [M | I]).
  const m = use.map((row) => lost.map((i) => coefficient(row, i)));
  const id: number[][] = use.map((_, a) => lost.map((_, b) => (a === b ? 1 : 0)));
  for (let col = 0; col < L; col++) {
    let pivot = col;
    while (m[pivot][col] === 0) pivot++;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    [id[col], id[pivot]] = [id[pivot], id[col]];
    const f = inv(m[col][col]);
    for (let b = 0; b < L; b++) {
      m[col][b] = mul(m[col][b], f);
      id[col][b] = mul(id[col][b], f);
    }
    for (let a = 0; a < L; a++) {
      const g = m[a][col];
      if (a === col || g === 0) continue;
      for (let b = 0; b < L; b++) {
        m[a][b] ^= mul(g, m[col][b]);
        id[a][b] ^= mul(g, id[col][b]);
      }
    }
  }
  // lost piece b = sum_a inv[b][a] * syn[a]
  const out = new Map<number, Buffer>();
  lost.forEach((i, b) => {
    const piece = Buffer.alloc(size);
    for (let a = 0; a < L; a++) mulAdd(piece, syn[a], id[b][a]);
    out.set(i, piece);
  });
  return out;
}
