/**
 * Parser for `var/lib/dpkg/info/<package>[:<arch>].md5sums`: md5sum(1) output, one `<md5>  <path>` per
 * line with paths relative to the root. These lists let a dpkg-md5sums rule match without the file's bytes.
 */
import { textLines } from '../../core/text-lines.js';
import type { Md5sumsFact } from '../facts.js';

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

/** Lines of one md5sums file; malformed lines are skipped, md5s lowercased. */
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
