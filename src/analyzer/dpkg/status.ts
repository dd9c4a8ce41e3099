/**
 * Parser for the dpkg database: `var/lib/dpkg/status` (one RFC822-style paragraph per package) and the
 * one-paragraph-per-file `var/lib/dpkg/status.d/*` that distroless images ship instead (no Status field).
 */
import type { PackageFact } from '../facts.js';

/** One control paragraph: lowercased field name → value (continuation lines joined with '\n'). */
export type ControlParagraph = Map<string, string>;

/** Split control-file text into paragraphs; tolerant of CRLF, comments, and stray junk lines. */
export function parseControlParagraphs(text: string): ControlParagraph[] {
  const paragraphs: ControlParagraph[] = [];
  let current: ControlParagraph = new Map();
  let lastKey: string | null = null;
  const flush = () => {
    if (current.size > 0) paragraphs.push(current);
    current = new Map();
    lastKey = null;
  };
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      flush();
      continue;
    }
    if (line.startsWith('#')) continue; // deb822 comments; dpkg itself never writes them
    if (line.startsWith(' ') || line.startsWith('\t')) {
      // Continuation of the previous field (Description, Conffiles…); orphaned ones are ignored.
      if (lastKey !== null) current.set(lastKey, `${current.get(lastKey)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      lastKey = null; // not a field: skip rather than fail the whole database
      continue;
    }
    // Field names are case-insensitive (Debian Policy §5.1).
    lastKey = line.slice(0, colon).trim().toLowerCase();
    current.set(lastKey, line.slice(colon + 1).trim());
  }
  flush();
  return paragraphs;
}

/** `Source: xz-utils (5.6.1-1)` → `xz-utils`. */
function sourceName(value: string | undefined): string | null {
  if (value === undefined) return null;
  const name = value.split(/[\s(]/, 1)[0] ?? '';
  return name === '' ? null : name;
}

/** Packages of a dpkg status file (or one status.d file); paragraphs without Package or Version are skipped. */
export function parseDpkgStatus(text: string, statusFile: string): PackageFact[] {
  const out: PackageFact[] = [];
  for (const p of parseControlParagraphs(text)) {
    const name = p.get('package');
    const version = p.get('version');
    if (!name || !version) continue; // purged entries carry no Version; nothing to match on
    out.push({
      name,
      version,
      architecture: p.get('architecture') || null,
      source: sourceName(p.get('source')),
      status: p.get('status') ?? null,
      statusFile,
    });
  }
  return out;
}

/** Whether the package's files are on disk: status.d entries (null) and every state but not-installed/config-files. */
export function isPackageInstalled(pkg: PackageFact): boolean {
  if (pkg.status === null) return true;
  const state = pkg.status.split(/\s+/)[2];
  return state !== 'not-installed' && state !== 'config-files';
}
