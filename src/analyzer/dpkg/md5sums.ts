/**
 * Parser for `var/lib/dpkg/info/<package>[:<arch>].md5sums`: md5sum(1) output, one `<md5>  <path>` per
 * line with paths relative to the root. These lists let a dpkg-md5sums rule match without the file's bytes.
 */
import { textLines } from '../../core/text-lines.js';
import type { Md5sumsFact } from '../facts.js';
import { decodeTarName } from '../tar-name.js';

const LINE = /^([0-9a-fA-F]{32}) [ *](.+)$/;

/** `/var/lib/dpkg/info/liblzma5:amd64.md5sums` → `liblzma5`. */
export function packageFromInfoFile(infoFile: string): string {
  const base = infoFile.slice(infoFile.lastIndexOf('/') + 1).replace(/\.md5sums$/, '');
  const colon = base.indexOf(':');
  return colon >= 0 ? base.slice(0, colon) : base;
}

/** Make `usr/lib/x`, `./usr/lib/x`, `/usr//lib/./x` all `/usr/lib/x` (no `..` resolution: dpkg never writes it). */
export function normalizeListedPath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  return `/${parts.join('/')}`;
}

/**
 * Lines of one md5sums file as text (its bytes decoded by decodeTarName); malformed lines are skipped,
 * md5s lowercased. The plain statement of what an md5sums line is: the analyzer reads the bytes
 * themselves (parseMd5sumsBytes), and its tests hold it to this, on real lists and on random bytes.
 */
export function parseMd5sums(text: string, infoFile: string): Md5sumsFact[] {
  const pkg = packageFromInfoFile(infoFile);
  const out: Md5sumsFact[] = [];
  for (const line of textLines(text)) {
    const m = LINE.exec(line);
    if (!m) continue;
    const path = normalizeListedPath(m[2]!);
    if (path === '/') continue;
    out.push({ package: pkg, infoFile, md5: m[1]!.toLowerCase(), path });
  }
  return out;
}

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** Bytes of `<32 hex digits><space><space or *>`, the part of LINE before the path. */
const PREFIX_BYTES = 34;
/** What JavaScript's `.` does not match, so LINE's `(.+)$` refuses a path holding one. */
const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/**
 * `parseMd5sums(decodeTarName(bytes), infoFile)`, read from the bytes a line at a time: only the paths
 * of well-formed lines are decoded, so a 64 MiB list costs what its facts keep, not a string of up to
 * three UTF-16 units a byte. Decoding commutes with splitting at newline bytes: a 0x0A is never inside
 * a UTF-8 sequence or an escape (U+FFFD and two hex digits), and a line's ASCII prefix decodes as itself.
 */
export function parseMd5sumsBytes(bytes: Buffer, infoFile: string): Md5sumsFact[] {
  const pkg = packageFromInfoFile(infoFile);
  const out: Md5sumsFact[] = [];
  for (let start = 0; start <= bytes.length; ) {
    const newline = bytes.indexOf(NEWLINE, start);
    const lineEnd = newline === -1 ? bytes.length : newline;
    const lineStart = start;
    start = lineEnd + 1;
    // textLines drops one carriage return at a line's end; the bytes end in 0x0D exactly when the text does.
    const end = lineEnd > lineStart && bytes[lineEnd - 1] === CARRIAGE_RETURN ? lineEnd - 1 : lineEnd;
    // `(.+)` wants a character after the prefix, and a garbage line is skipped before any of it is decoded.
    if (end - lineStart <= PREFIX_BYTES || !hasMd5Prefix(bytes, lineStart)) continue;
    const listed = decodeTarName(bytes, lineStart + PREFIX_BYTES, end);
    if (LINE_TERMINATOR.test(listed)) continue;
    const path = normalizeListedPath(listed);
    if (path === '/') continue;
    const md5 = bytes.toString('latin1', lineStart, lineStart + 32).toLowerCase();
    out.push({ package: pkg, infoFile, md5, path });
  }
  return out;
}

/** LINE's `^([0-9a-fA-F]{32}) [ *]` on the bytes at `at`: every one ASCII, so decoded they are the same. */
function hasMd5Prefix(bytes: Buffer, at: number): boolean {
  for (let i = at; i < at + 32; i++) {
    const b = bytes[i] as number;
    const hex = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
    if (!hex) return false;
  }
  const marker = bytes[at + 33];
  return bytes[at + 32] === 0x20 && (marker === 0x20 || marker === 0x2a);
}
