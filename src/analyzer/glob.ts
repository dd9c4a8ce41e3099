/**
 * Absolute-path globs for IOC rules, compiled to a RegExp once: `*` and `?` stay within one path
 * segment, `**` spans segments (`/usr/lib/**` + `/x` also matches `/usr/lib/x`), `[abc]`, `[a-z]`
 * and `[!abc]` classes. No braces: list several globs instead.
 */

// Characters with a meaning in a RegExp outside a class ('/' needs no escape in `new RegExp`).
const SPECIAL = /[.+^${}()|\\]/;

/** Why a glob is unusable, or null when it is fine. */
export function globProblem(glob: string): string | null {
  if (!glob.startsWith('/')) return 'a path glob must be absolute (start with "/")';
  let depth = 0;
  for (const c of glob) {
    if (c === '[') depth++;
    else if (c === ']' && depth > 0) depth--;
  }
  if (depth !== 0) return 'unterminated "[" character class';
  // `**` stands for whole segments; inside one (`/lib/liblzma**`) it would also cross a "/".
  const partial = glob
    .slice(1)
    .split('/')
    .find((seg) => seg.includes('**') && seg !== '**');
  if (partial !== undefined) {
    return `the path glob "${glob}" has "**" inside the segment "${partial}", but "**" stands for whole segments only (/a/**/b, /a/**); within a segment use "*"`;
  }
  // `{a,b}` reads as a choice in a shell, but these globs have no braces: it would match the text itself.
  if (/\{[^}]*,[^}]*\}/.test(glob)) {
    return `the path glob "${glob}" holds {…,…}, but globs have no braces (it would match the braces themselves); list several globs instead`;
  }
  try {
    compileGlob(glob);
  } catch (err) {
    // A class the RegExp engine refuses, such as a range out of order (`[z-a]`).
    const why = (err as Error).message.replace(/^Invalid regular expression: .*: /, '');
    return `the path glob "${glob}" is not usable: ${why.toLowerCase()}`;
  }
  // Stored paths are normalized (analyzer/paths.ts): no empty, "." or ".." segment, no trailing "/".
  // A glob with one could never match, and the rule would silently never fire.
  const segments = glob.slice(1).split('/');
  if (glob !== '/' && segments.includes('')) {
    const where = glob.endsWith('/') ? 'ends with "/"' : 'holds "//"';
    return `the path glob "${glob}" ${where}, and stored paths are normalized (no empty segment, no trailing "/"), so it could never match`;
  }
  const dots = segments.find((seg) => seg === '.' || seg === '..');
  if (dots !== undefined) {
    return `the path glob "${glob}" holds a "${dots}" segment, and stored paths are normalized (no "." or ".." segment), so it could never match`;
  }
  return null;
}

/** The regular-expression source (no anchors) for one glob. */
export function globToRegExpSource(pattern: string): string {
  // `/**/**/` means what `/**/` does; written once, each `**` below sees the "/" before it as its own.
  const glob = pattern.replace(/\/\*\*(?:\/\*\*)+(?=\/|$)/g, '/**');
  let re = '';
  let i = 0;
  while (i < glob.length) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const before = glob[i - 1];
        const after = glob[i + 2];
        if (before === '/' && after === '/') {
          // `/**/` matches one slash or any run of whole segments between slashes.
          re = `${re.slice(0, -1)}(?:/|/.*/)`;
          i += 3;
        } else if (before === '/' && after === undefined) {
          re = `${re.slice(0, -1)}(?:/.*)?`;
          i += 2;
        } else {
          re += '.*';
          i += 2;
        }
      } else {
        re += '[^/]*';
        i++;
      }
    } else if (c === '?') {
      re += '[^/]';
      i++;
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        i++;
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith('!') || body.startsWith('^');
      if (negate) body = body.slice(1);
      body = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      re += negate ? `[^/${body}]` : `[${body}]`;
      i = end + 1;
    } else {
      re += SPECIAL.test(c) ? `\\${c}` : c;
      i++;
    }
  }
  return re;
}

/** Compile one glob to an anchored RegExp. */
export function compileGlob(glob: string): RegExp {
  return new RegExp(`^${globToRegExpSource(glob)}$`, 's');
}

/** Compile several globs to one anchored alternation (null for an empty list). */
export function compileGlobs(globs: readonly string[]): RegExp | null {
  if (globs.length === 0) return null;
  return new RegExp(`^(?:${globs.map(globToRegExpSource).join('|')})$`, 's');
}

/** A set of globs tested together; checks the base name first, since most paths fail there. */
export interface GlobSet {
  test(path: string): boolean;
}

/**
 * Compile globs into a matcher for the per-entry hot path. Every path of a layer goes through it, so
 * a base-name RegExp (short input, cheap rejection) runs before the full alternation, whose `/**` +
 * `/` groups would otherwise backtrack across every path.
 */
export function compileGlobSet(globs: readonly string[]): GlobSet {
  const full = compileGlobs(globs);
  if (full === null) return { test: () => false };
  const lastSegments = globs.map((g) => g.slice(g.lastIndexOf('/') + 1));
  // A last segment with `**` (or an empty one) can match across slashes: no base-name shortcut.
  if (lastSegments.some((s) => s === '' || s.includes('**'))) return full;
  const base = new RegExp(`^(?:${[...new Set(lastSegments)].map(globToRegExpSource).join('|')})$`, 's');
  return {
    test(path: string): boolean {
      return base.test(path.slice(path.lastIndexOf('/') + 1)) && full.test(path);
    },
  };
}

/** The top-level folders merged-/usr systems (Debian 12, Ubuntu 20.04 and later) make links into /usr. */
const MERGED_USR_DIRS = new Set(['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']);

/**
 * `globs` and, for each naming a merged-/usr folder, its other spelling: `/lib/x86_64-linux-gnu/liblzma*`
 * and `/usr/lib/x86_64-linux-gnu/liblzma*`. On a merged-/usr image both name one file, and which one its
 * layer's archive holds depends on how the layer was made (dpkg lists `/lib/…`, a layer diff holds
 * `usr/lib/…`), while a rule copied from `dpkg -L` names the first. Each layer is analyzed alone, before
 * anything says whether its image is merged, so a rule's globs choose files under both spellings; on an
 * image that is not merged, the twin is the same library in the other folder, as worth a look.
 */
export function withMergedUsrTwins(globs: readonly string[]): string[] {
  const out = new Set(globs);
  for (const glob of globs) {
    const [first, second] = glob.split('/', 3).slice(1);
    if (first !== undefined && MERGED_USR_DIRS.has(first)) out.add(`/usr${glob}`);
    else if (first === 'usr' && second !== undefined && MERGED_USR_DIRS.has(second)) out.add(glob.slice(4));
  }
  return [...out];
}
