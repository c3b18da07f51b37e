/**
 * The name rules of the whole protocol, written once: images, layouts, nodes, groups and
 * attachment items share NAME (1-64 letters, digits, dot, dash, underscore, starting with
 * a letter or digit: safe in a URL path, a file name and a kernel command line); MACs are
 * six hex pairs separated by ':' or '-' on input and stored lower-case with ':'. The JSON
 * schemas of core/api and the checks of core/nodes and core/tree use these same patterns.
 */
export const NAME_SOURCE = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';
export const NAME_PATTERN = new RegExp(NAME_SOURCE);
export const NAME_RULE = '1-64 letters, digits, dot, dash or underscore, starting with a letter or digit';

/** A MAC as clients may write it (either separator, any case). */
export const MAC_INPUT_SOURCE = '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$';
export const MAC_INPUT_PATTERN = new RegExp(MAC_INPUT_SOURCE);
/** A MAC as Cloner stores it. */
export const MAC_PATTERN = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A MAC in Cloner's form (lower case, ':'), or null when `value` is not a MAC. */
export function normalizeMac(value: string): string | null {
  return MAC_INPUT_PATTERN.test(value) ? value.toLowerCase().replace(/-/g, ':') : null;
}

export const CHUNK_ID_SOURCE = '^[0-9a-f]{64}$';
