/**
 * Tar names are bytes, and runtimes create files under exactly those bytes; hubcrawl keys files by
 * string. Decoding with U+FFFD replacement would give `lib\xff` and `lib\xfe` one key, so a whiteout
 * or a clean file at one would hide a backdoor at the other. This decoding keeps every byte name
 * distinct and leaves every real name (valid UTF-8 without a U+FFFD of its own) as it is.
 */

import { isUtf8 } from 'node:buffer';

const REPLACEMENT = '\uFFFD';
/** Lowercase hex digits as UTF-16 units. */
const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/**
 * A tar name or link target as a string, injectively: valid UTF-8 decodes as usual; each byte of an
 * invalid sequence becomes U+FFFD and its two lowercase hex digits (`\xff` → `\uFFFDff`); a U+FFFD
 * the name really holds is doubled. After a U+FFFD comes another or two hex digits, so no two byte
 * strings give the same text.
 */
export function decodeTarName(buf: Buffer, start = 0, end = buf.length): string {
  // The common case: valid UTF-8 holding no U+FFFD decodes as Node decodes it. Invalid bytes are told
  // without decoding them first: a 64 MiB md5sums list of them would make a 128 MiB string for nothing.
  if (isUtf8(buf.subarray(start, end))) {
    const text = buf.toString('utf8', start, end);
    if (!text.includes(REPLACEMENT)) return text;
  }
  // UTF-16 units written one by one: no string built per byte, so a megabyte of invalid bytes (a
  // pax record may be that large) costs milliseconds. An escape takes 3 units, the most per byte.
  const out = new Uint16Array((end - start) * 3);
  let o = 0;
  for (let i = start; i < end; ) {
    const b0 = buf[i] as number;
    const n = b0 < 0x80 ? 1 : wellFormedLength(buf, i, end);
    if (n === 0) {
      out[o++] = 0xfffd;
      out[o++] = HEX[b0 >> 4] as number;
      out[o++] = HEX[b0 & 15] as number;
      i++;
      continue;
    }
    let cp = n === 1 ? b0 : b0 & (0x7f >> n);
    for (let j = 1; j < n; j++) cp = (cp << 6) | ((buf[i + j] as number) & 0x3f);
    if (cp === 0xfffd) out[o++] = 0xfffd; // doubled below
    if (cp >= 0x10000) {
      out[o++] = 0xd800 + ((cp - 0x10000) >> 10);
      out[o++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    } else out[o++] = cp;
    i += n;
  }
  return Buffer.from(out.buffer, 0, o * 2).toString('utf16le');
}

/**
 * `decodeTarName(buf, start, end).length` without building the text: what a file of paths (an md5sums
 * list up to maxCaptureBytes) will cost once decoded, known before any of it is. Its invalid bytes
 * would decode to 3 UTF-16 units each, a 64 MiB file to a 384 MiB string.
 */
export function decodedTarNameLength(buf: Buffer, start = 0, end = buf.length): number {
  let length = 0;
  for (let i = start; i < end; ) {
    const b0 = buf[i] as number;
    if (b0 < 0x80) {
      length++;
      i++;
      continue;
    }
    const n = wellFormedLength(buf, i, end);
    if (n === 0) {
      length += 3;
      i++;
      continue;
    }
    // Four bytes are a character past U+FFFF, a surrogate pair; EF BF BD is a U+FFFD, doubled.
    const isReplacement = n === 3 && b0 === 0xef && buf[i + 1] === 0xbf && buf[i + 2] === 0xbd;
    length += n === 4 || isReplacement ? 2 : 1;
    i += n;
  }
  return length;
}

/**
 * The length of a name decoded by decodeTarName as the tar stored it, in characters: an escaped
 * byte or a doubled U+FFFD counts as one, so escaping never pushes a name past maxPathLength.
 */
export function storedNameLength(name: string): number {
  let length = name.length;
  for (let i = name.indexOf(REPLACEMENT); i !== -1; i = name.indexOf(REPLACEMENT, i)) {
    const width = name[i + 1] === REPLACEMENT ? 2 : 3;
    length -= width - 1;
    i += width;
  }
  return length;
}

/** Bytes of the well-formed UTF-8 character at `i` (Unicode, Table 3-7), or 0 when none starts there. */
function wellFormedLength(buf: Buffer, i: number, end: number): number {
  const b0 = buf[i] as number;
  if (b0 < 0x80) return 1;
  let n: number;
  let lo = 0x80; // bounds of the second byte; E0/F0 exclude overlong forms, ED surrogates, F4 > U+10FFFF
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) n = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 === 0xe0) lo = 0xa0;
    else if (b0 === 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 === 0xf0) lo = 0x90;
    else if (b0 === 0xf4) hi = 0x8f;
  } else return 0;
  if (i + n > end) return 0;
  const b1 = buf[i + 1] as number;
  if (b1 < lo || b1 > hi) return 0;
  for (let j = i + 2; j < i + n; j++) {
    const c = buf[j] as number;
    if (c < 0x80 || c > 0xbf) return 0;
  }
  return n;
}
