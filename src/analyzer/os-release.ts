/**
 * os-release(5) parser: newline-separated `KEY=value` assignments in a shell-compatible subset —
 * double quotes (with `\"`, `\\`, `\$`, `` \` `` escapes), single quotes (literal), backslash escapes
 * in unquoted values, `#` comment lines. `/etc/debian_version` holds one bare version line instead.
 */
import type { OsReleaseFact, PackageFact } from './facts.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Unquote one shell-style value; stops at unquoted whitespace (os-release values are single words). */
function unquote(value: string): string {
  let out = '';
  let i = 0;
  while (i < value.length) {
    const c = value[i]!;
    if (c === '"') {
      i++;
      while (i < value.length && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < value.length && '"\\$`'.includes(value[i + 1]!)) i++;
        out += value[i];
        i++;
      }
      i++; // closing quote (or end of a malformed, unterminated value)
    } else if (c === "'") {
      const end = value.indexOf("'", i + 1);
      out += end < 0 ? value.slice(i + 1) : value.slice(i + 1, end);
      i = end < 0 ? value.length : end + 1;
    } else if (c === '\\') {
      if (i + 1 < value.length) out += value[i + 1];
      i += 2;
    } else if (c === ' ' || c === '\t') {
      break; // an unquoted blank ends the word; what follows is a trailing comment or junk
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Parse `/etc/os-release`, `/usr/lib/os-release` or `/etc/debian_version` text. Bad lines are skipped. */
export function parseOsRelease(text: string, path: string): OsReleaseFact {
  const fields: Record<string, string> = {};
  if (path.endsWith('/debian_version')) {
    const first = text.split('\n', 1)[0]?.trim() ?? '';
    if (first !== '') fields.VERSION = first;
    return { path, fields };
  }
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!KEY.test(key)) continue;
    fields[key] = unquote(line.slice(eq + 1).trim());
  }
  return { path, fields };
}

/** Whether the image looks Debian-derived: os-release ID/ID_LIKE names debian or ubuntu, a debian_version file, or a dpkg database. */
export function isDebianDerived(osRelease: OsReleaseFact[], packages: PackageFact[]): boolean {
  if (packages.length > 0) return true;
  for (const o of osRelease) {
    if (o.path.endsWith('/debian_version')) return true;
    const ids = `${o.fields.ID ?? ''} ${o.fields.ID_LIKE ?? ''}`.toLowerCase().split(/\s+/);
    if (ids.includes('debian') || ids.includes('ubuntu')) return true;
  }
  return false;
}
