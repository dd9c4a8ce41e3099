/**
 * Parser for the dpkg database: `var/lib/dpkg/status` (one RFC822-style paragraph per package) and the
 * one-paragraph-per-file `var/lib/dpkg/status.d/*` that distroless images ship instead (no Status field).
 */
import { textLines } from '../../core/text-lines.js';
import type { PackageFact } from '../facts.js';

/** One control paragraph: lowercased field name → value (continuation lines joined with '\n'). */
export type ControlParagraph = Map<string, string>;

/** dpkg's c_isspace minus the newline: a line starting with one of these continues a field. */
const CONTINUATION = /^[ \t\v\f\r]/;

/**
 * Split control-file text into paragraphs the way dpkg's parser (lib/dpkg/parse.c, parse_stanza)
 * does: only a truly empty line ends a paragraph. A line starting with whitespace continues the
 * field above it, even when it holds nothing but whitespace: dpkg 1.21 reads such a line as part of
 * the value ("blank line in value of field", a warning for the status file) and trims it off the
 * value's end; older dpkg refuses the file. Where dpkg refuses a file this parser stays lenient in
 * the direction that keeps packages visible: CRLF, comment and junk lines, a whitespace line
 * outside any paragraph (dpkg: "empty field name"), a repeated Package field (dpkg: "duplicate
 * value"), which starts a new paragraph here so neither package is lost.
 */
export function parseControlParagraphs(text: string): ControlParagraph[] {
  return [...controlParagraphs(text)];
}

/**
 * The same, one paragraph at a time: a caller that keeps a few fields of each (parseDpkgStatus) lets the
 * rest go as it reads, instead of holding every paragraph and every line of a database of a million
 * packages at once (several hundred MiB for 70 MiB of text, against maxFactBytes's estimate).
 *
 * Given `fields` (lowercased names), a paragraph holds only those: the others are read past, their
 * continuation lines too, and a paragraph with none of them is not handed out. Package always counts,
 * as a second one starts a new paragraph. Kept whole, a paragraph of 6 million distinct field names (a
 * 63 MiB status file, 13 MB gzipped) took the analyzer to 2.7 GiB: a Map entry and a value each, unread.
 */
export function* controlParagraphs(text: string, fields?: ReadonlySet<string>): Generator<ControlParagraph> {
  let current = new Map<string, FieldLines>();
  let lastKey: string | null = null;
  const finish = (): ControlParagraph | null => {
    // dpkg trims the whitespace at the end of a value, whitespace-only continuation lines included.
    const done: ControlParagraph | null = current.size > 0 ? new Map() : null;
    for (const [key, lines] of current) done?.set(key, lines.text().trimEnd());
    current = new Map();
    lastKey = null;
    return done;
  };
  for (const line of textLines(text)) {
    if (line === '') {
      const done = finish();
      if (done) yield done;
      continue;
    }
    if (line.startsWith('#')) continue; // deb822 comments; dpkg itself never writes them
    if (CONTINUATION.test(line)) {
      // Continuation of the previous field (Description, Conffiles…); orphaned ones are ignored.
      if (lastKey !== null) current.get(lastKey)?.add(line.trim());
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      lastKey = null; // not a field: skip rather than fail the whole database
      continue;
    }
    // Field names are case-insensitive (Debian Policy §5.1).
    const key = line.slice(0, colon).trim().toLowerCase();
    if (key === 'package' && current.has(key)) {
      const done = finish();
      if (done) yield done;
    }
    // A field not kept is still the one its continuation lines continue: lastKey names it, current lacks it.
    lastKey = key;
    if (fields === undefined || key === 'package' || fields.has(key)) {
      current.set(key, new FieldLines(line.slice(colon + 1).trim()));
    }
  }
  const last = finish();
  if (last) yield last;
}

/** Lines joined into groups of this many as they come (FieldLines). */
const LINES_PER_GROUP = 4096;

/**
 * The lines of one field's value, joined with `\n` once the field ends. A value grown a line at a time
 * (`value + '\n' + line`) keeps a V8 cons string per line until it is read: a 60 MiB status file of 30
 * million ` ` continuation lines (61 KB gzipped, under maxCaptureBytes and maxFactBytes) took the analyzer
 * to 1.2 GiB and out of a 1 GiB heap. Lines are joined in groups as they come, so memory stays near the
 * value's own size.
 */
class FieldLines {
  private readonly groups: string[] = [];
  private lines: string[];

  constructor(first: string) {
    this.lines = [first];
  }

  add(line: string): void {
    this.lines.push(line);
    if (this.lines.length < LINES_PER_GROUP) return;
    this.groups.push(this.lines.join('\n'));
    this.lines = [];
  }

  text(): string {
    if (this.lines.length > 0) this.groups.push(this.lines.join('\n'));
    this.lines = [];
    return this.groups.join('\n');
  }
}

/** `Source: xz-utils (5.6.1-1)` → `xz-utils`. */
function sourceName(value: string | undefined): string | null {
  if (value === undefined) return null;
  const name = value.split(/[\s(]/, 1)[0] ?? '';
  return name === '' ? null : name;
}

/** The fields parseDpkgStatus reads. */
const PACKAGE_FIELDS: ReadonlySet<string> = new Set([
  'package',
  'version',
  'architecture',
  'source',
  'status',
]);

/** Packages of a dpkg status file (or one status.d file); paragraphs without Package or Version are skipped. */
export function parseDpkgStatus(text: string, statusFile: string): PackageFact[] {
  const out: PackageFact[] = [];
  for (const p of controlParagraphs(text, PACKAGE_FIELDS)) {
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

/** The main dpkg database; the other status files are distroless `status.d/*` entries. */
export const DPKG_STATUS_FILE = '/var/lib/dpkg/status';

/**
 * Whether the package's files are on disk: every state but not-installed/config-files, and a
 * status.d entry, which never has a Status field (distroless writes one file per installed package).
 */
export function isPackageInstalled(pkg: PackageFact): boolean {
  if (pkg.status === null) {
    // In the main database a paragraph without Status is not a state dpkg writes. dpkg reads it as
    // `unknown ok not-installed` and drops its version (dpkg-query -W prints `un`), so the image's
    // own dpkg, the runtime's view, does not count it installed, and neither does this. A detector
    // loses nothing real here: whoever can edit the database can delete the paragraph just as well,
    // and the package's files, if present, are still hashed and scanned by the file rules.
    return pkg.statusFile !== DPKG_STATUS_FILE;
  }
  const state = pkg.status.split(/\s+/)[2];
  return state !== 'not-installed' && state !== 'config-files';
}
