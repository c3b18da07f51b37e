/**
 * Node selectors, as cluster admins write them: comma lists (`node01,node02`), hostlist
 * ranges (`node[01-64]`, `rack[1-2]n[1-4]`, `node[1,3,5-7]`; zero padding kept from the
 * range's first bound) and groups (`@gpu`). `expandHostlist` turns one expression into
 * names (bounded: a selector never expands past MAX_NODES); `selectNodes` resolves a whole
 * selector against the registry's names and groups.
 */
import { ClonerError } from '../errors.ts';

export const MAX_NODES = 100_000;

export class SelectorError extends ClonerError {
  override readonly code = 'SELECTOR_INVALID';
}

/** Splits on commas that are not inside brackets. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '[') depth++;
    else if (text[i] === ']') depth--;
    if (depth < 0) throw new SelectorError(`unbalanced "]" in ${JSON.stringify(text)}`, 'write ranges as node[01-04]');
    if (text[i] === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw new SelectorError(`unbalanced "[" in ${JSON.stringify(text)}`, 'write ranges as node[01-04]');
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter(Boolean);
}

function expandRange(body: string, whole: string): string[] {
  const out: string[] = [];
  for (const piece of body.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(piece.trim());
    if (!m) throw new SelectorError(`bad range "${piece}" in ${JSON.stringify(whole)}`, 'use numbers and dashes, e.g. node[01-08,10]');
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new SelectorError(`range ${piece} in ${JSON.stringify(whole)} goes backwards`, 'write the smaller bound first');
    if (to - from + 1 > MAX_NODES) throw new SelectorError(`range ${piece} is larger than ${MAX_NODES} names`, 'select fewer nodes');
    const width = m[1].length;
    for (let n = from; n <= to; n++) out.push(String(n).padStart(width, '0'));
  }
  return out;
}

/** One hostlist expression (no top-level commas) to names, ranges expanded left to right. */
function expandOne(expr: string): string[] {
  let names = [''];
  const re = /\[([^\]]*)\]|[^[\]]+/g;
  for (const m of expr.matchAll(re)) {
    const parts = m[1] !== undefined ? expandRange(m[1], expr) : [m[0]];
    if (names.length * parts.length > MAX_NODES) throw new SelectorError(`${JSON.stringify(expr)} names more than ${MAX_NODES} nodes`, 'select fewer nodes');
    names = names.flatMap((prefix) => parts.map((p) => prefix + p));
  }
  return names;
}

/** `node[01-03],gpu1` -> node01, node02, node03, gpu1 (groups are left to selectNodes). */
export function expandHostlist(text: string): string[] {
  const out: string[] = [];
  for (const part of splitTop(text)) {
    if (part.startsWith('@')) throw new SelectorError(`group ${part} needs the registry`, 'use selectNodes to resolve groups');
    out.push(...expandOne(part));
  }
  return out;
}

/**
 * The registry names a selector picks, in selector order without repeats. Every plain
 * name must exist; an unknown one is an error naming it (a typo must not silently select
 * nothing). Groups (`@name`) pick their members; an unknown group is an error too.
 */
export function selectNodes(selector: string, registry: Array<{ name: string; groups: string[] }>): string[] {
  const known = new Set(registry.map((n) => n.name));
  const picked: string[] = [];
  const seen = new Set<string>();
  const add = (name: string) => {
    if (!seen.has(name)) {
      seen.add(name);
      picked.push(name);
    }
  };
  for (const part of splitTop(selector)) {
    if (part.startsWith('@')) {
      const group = part.slice(1);
      const members = registry.filter((n) => n.groups.includes(group)).map((n) => n.name);
      if (!members.length) throw new SelectorError(`no node is in group ${group}`, 'list nodes and their groups with: cloner nodes list');
      members.forEach(add);
      continue;
    }
    const names = expandOne(part);
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length) throw new SelectorError(`unknown node${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ` and ${unknown.length - 5} more` : ''}`, 'add them with: cloner nodes add NAME ...');
    names.forEach(add);
  }
  return picked;
}
