/**
 * Tar member names → absolute, normalized paths, OCI whiteout recognition, and a path's ancestors. Nothing is ever
 * extracted, so these paths are only keys: the rules are that equal files get equal keys and that
 * no name can escape the root.
 */
import type { WhiteoutFact } from './facts.js';

/**
 * Normalizes a tar member name: `./usr/lib/x`, `usr/lib/x` and `/usr//lib/./x` all become `/usr/lib/x`.
 * `..` pops a component but never climbs above `/`; a NUL ends the name (as it does for every C tool
 * that would open the file); a trailing slash is dropped; the root is `/`.
 */
export function normalizeTarPath(name: string): string {
  const nul = name.indexOf('\0');
  const raw = nul === -1 ? name : name.slice(0, nul);
  // Most names are `./a/b` or `a/b` with nothing to resolve: skip the split/join for them.
  const body = raw.startsWith('./') ? raw.slice(2) : raw;
  if (body !== '' && !body.startsWith('/') && !body.endsWith('/') && !/\/\/|(^|\/)\.\.?(\/|$)/.test(body)) {
    return `/${body}`;
  }
  const out: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      out.pop();
      continue;
    }
    out.push(part);
  }
  return `/${out.join('/')}`;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * The whiteout an entry stands for, given its normalized path, or null when it is not a whiteout.
 * `/a/.wh.b` removes `/a/b`; `/a/.wh..wh..opq` hides everything below `/a` in lower layers.
 * Other `.wh..wh.*` names are aufs bookkeeping (hard-link dirs), which OCI says to ignore: they
 * come back as `'ignore'`.
 */
export function whiteoutOf(path: string): WhiteoutFact | 'ignore' | null {
  const slash = path.lastIndexOf('/');
  const base = path.slice(slash + 1);
  if (!base.startsWith(WHITEOUT_PREFIX)) return null;
  const dir = slash <= 0 ? '/' : path.slice(0, slash);
  if (base === OPAQUE_MARKER) return { path: dir, opaque: true };
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return 'ignore';
  const removed = base.slice(WHITEOUT_PREFIX.length);
  if (removed === '' || removed === '.' || removed === '..') return 'ignore';
  return { path: dir === '/' ? `/${removed}` : `${dir}/${removed}`, opaque: false };
}

/** `/a/b/c` → [`/a`, `/a/b`] (proper ancestors, root excluded). */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}
