/**
 * Disk selector globs (`match.name`, `match.model`, `match.serial` of a layout), matched in
 * bounded time. A layout is untrusted input and a selector is matched against every disk
 * of every node, so a regex-backed matcher (picomatch with extglobs such as `+(a|aa)+(a|aa)`)
 * could backtrack for minutes.
 *
 * Syntax: `*` any run of characters, `?` one character, `[abc]` / `[a-z]` / `[!0-9]` a
 * class, `\` quotes the next character; everything else (braces, parentheses, `+`, `@`)
 * stands for itself. Algorithm: the pattern is parsed once into tokens; matching is the
 * classic greedy scan that remembers only the last `*` and where it resumed, so it costs
 * at most pattern length x value length steps (128 x 1024 here), never exponential.
 */

type Token = { kind: 'char'; ch: string } | { kind: 'one' } | { kind: 'star' } | { kind: 'class'; negate: boolean; ranges: Array<[string, string]> };

export const MAX_GLOB_VALUE = 1024;

/** The pattern's tokens, or an error message when it is malformed (an unclosed `[`, a trailing `\`). */
export function parseGlob(pattern: string): Token[] | string {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === '?') tokens.push({ kind: 'one' });
    else if (c === '\\') {
      if (i + 1 >= pattern.length) return 'a trailing "\\" quotes nothing';
      tokens.push({ kind: 'char', ch: pattern[++i] });
    } else if (c === '[') {
      let j = i + 1;
      const negate = pattern[j] === '!' || pattern[j] === '^';
      if (negate) j++;
      const ranges: Array<[string, string]> = [];
      let first = true;
      for (; j < pattern.length && (first || pattern[j] !== ']'); j++, first = false) {
        let lo = pattern[j];
        if (lo === '\\' && j + 1 < pattern.length) lo = pattern[++j];
        if (pattern[j + 1] === '-' && j + 2 < pattern.length && pattern[j + 2] !== ']') {
          let hi = pattern[j + 2];
          j += 2;
          if (hi === '\\' && j + 1 < pattern.length) hi = pattern[++j];
          if (hi < lo) return `the class range "${lo}-${hi}" is backwards`;
          ranges.push([lo, hi]);
        } else ranges.push([lo, lo]);
      }
      if (j >= pattern.length) return 'a "[" without its "]"';
      tokens.push({ kind: 'class', negate, ranges });
      i = j;
    } else tokens.push({ kind: 'char', ch: c });
  }
  return tokens;
}

function matchesOne(t: Token, ch: string): boolean {
  switch (t.kind) {
    case 'char':
      return t.ch === ch;
    case 'one':
      return true;
    case 'class':
      return t.ranges.some(([lo, hi]) => ch >= lo && ch <= hi) !== t.negate;
    case 'star':
      return false;
  }
}

/** Does `value` match `pattern` (case-insensitive)? A malformed pattern or an over-long value matches nothing. */
export function globMatch(pattern: string, value: string): boolean {
  if (value.length > MAX_GLOB_VALUE) return false;
  const tokens = parseGlob(pattern.toLowerCase());
  if (typeof tokens === 'string') return false;
  const v = value.toLowerCase();
  let t = 0;
  let i = 0;
  let starT = -1;
  let starI = 0;
  while (i < v.length) {
    if (t < tokens.length && tokens[t].kind === 'star') {
      starT = t++;
      starI = i;
    } else if (t < tokens.length && matchesOne(tokens[t], v[i])) {
      t++;
      i++;
    } else if (starT >= 0) {
      // Give the last star one more character and retry what follows it.
      t = starT + 1;
      i = ++starI;
    } else return false;
  }
  while (t < tokens.length && tokens[t].kind === 'star') t++;
  return t === tokens.length;
}
