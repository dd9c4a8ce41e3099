/**
 * Decoding of the fixed fields of a 512-byte tar header block: octal and GNU base-256 numbers,
 * the header checksum, NUL-terminated strings and the name/prefix pair, plus the decimal numbers
 * pax records and sparse maps carry, each read as Go's archive/tar reads it: Docker, containerd and
 * Podman apply layers with it, so where the two readers differ, an attacker picks what hubcrawl sees.
 * Pure functions over bytes; every malformation becomes a CorruptInputError made by the caller's
 * `corrupt`, so the message names the header's offset.
 */
import type { CorruptInputError } from '../core/errors.js';
import { decodeTarName } from './tar-name.js';

/** Tar's unit: headers, extension blocks and member data padding are all whole 512-byte blocks. */
export const BLOCK = 512;

/** Whoever reads a header: turns "what is wrong" into a typed error pointing at that header. */
export interface HasCorrupt {
  corrupt(what: string): CorruptInputError;
}

/** True when all 512 bytes are zero (half the end-of-archive marker). */
export function isZeroBlock(blk: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (blk[i] !== 0) return false;
  return true;
}

/** Checksum over the header with its checksum field read as spaces; old writers summed signed bytes. */
export function verifyChecksum(blk: Buffer, ctx: HasCorrupt): void {
  let unsigned = 8 * 0x20;
  for (let i = 0; i < 148; i++) unsigned += blk[i] as number;
  for (let i = 156; i < BLOCK; i++) unsigned += blk[i] as number;
  const stored = parseNumeric(blk, 148, 8, 'checksum', ctx);
  if (stored === unsigned) return;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) {
    if (i >= 148 && i < 156) continue;
    const b = blk[i] as number;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== signed) throw ctx.corrupt(`checksum ${stored} does not match the header (${unsigned})`);
}

/**
 * Why a numeric field holds no number: 'empty' is read as 0 everywhere but in the checksum;
 * 'negative' and 'too-large' (past 2^53) are numbers Go's archive/tar reads but hubcrawl has no use
 * for; 'not-octal' and 'overflow' (past 63 bits) are fields Go's parser refuses too.
 */
export type NumericFault = 'negative' | 'too-large' | 'overflow' | 'not-octal' | 'empty';

/**
 * Octal or GNU base-256 number, or the fault that keeps it from being one, read as Go's archive/tar
 * reads it (reader.go parseNumeric, parseOctal): runtimes read layers with it, and where a field
 * parses decides how the old-GNU header is read (headerName). Returns instead of throwing, so the
 * lenient mode read (once per entry) costs no exception when a writer left the field malformed.
 */
export function readNumeric(blk: Buffer, off: number, len: number): number | NumericFault {
  if ((blk[off] as number) & 0x80) return readBase256(blk, off, len);
  // Spaces and NULs trimmed from both ends, then the digits up to the first NUL left.
  let start = off;
  let end = off + len;
  while (start < end && isPad(blk[start] as number)) start++;
  while (end > start && isPad(blk[end - 1] as number)) end--;
  if (start === end) return 'empty';
  let v = 0;
  for (let i = start; i < end && blk[i] !== 0; i++) {
    const c = blk[i] as number;
    if (c < 0x30 || c > 0x37) return 'not-octal';
    v = v * 8 + (c - 0x30);
  }
  return v;
}

const isPad = (c: number) => c === 0x20 || c === 0;

/** GNU base-256: big-endian two's complement after the marker bit, the sign in bit 0x40 of the first byte. */
function readBase256(blk: Buffer, off: number, len: number): number | NumericFault {
  const inv = (blk[off] as number) & 0x40 ? 0xff : 0;
  let v = 0n;
  for (let i = 0; i < len; i++) {
    const c = ((blk[off + i] as number) ^ inv) & (i === 0 ? 0x7f : 0xff);
    v = (v << 8n) | BigInt(c);
  }
  if (v >= 1n << 63n) return 'overflow';
  if (inv !== 0) return 'negative';
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? 'too-large' : Number(v);
}

/** True when Go's archive/tar parses the field without an error (a negative or huge number parses). */
export function goParsesNumeric(blk: Buffer, off: number, len: number): boolean {
  const v = readNumeric(blk, off, len);
  return v !== 'not-octal' && v !== 'overflow';
}

/** Octal (NUL/space padded) or GNU base-256 numbers; an empty field is 0, except a checksum. */
export function parseNumeric(blk: Buffer, off: number, len: number, what: string, ctx: HasCorrupt): number {
  const v = readNumeric(blk, off, len);
  if (typeof v === 'number') return v;
  switch (v) {
    case 'empty':
      if (what === 'checksum') throw ctx.corrupt('empty checksum field');
      return 0;
    case 'negative':
      throw ctx.corrupt(`negative base-256 ${what}`);
    case 'too-large':
    case 'overflow':
      throw ctx.corrupt(`${what} is too large`);
    default:
      throw ctx.corrupt(`${what} field is not an octal number`);
  }
}

/** The mode is informational: a malformed (or empty) one becomes 0 instead of failing the layer. */
export function parseNumericLenient(blk: Buffer, off: number, len: number): number {
  const v = readNumeric(blk, off, len);
  return typeof v === 'number' ? v : 0;
}

/**
 * A decimal number as pax records and sparse maps write it, as Go's strconv.ParseInt reads it there:
 * an optional `+`, digits (leading zeros allowed); negative numbers and anything past 2^53 refused.
 */
export function parseDecimal(s: string, what: string, ctx: HasCorrupt): number {
  const v = parseGoInt(s);
  if (v === null || v < 0) throw ctx.corrupt(`${what} "${s.slice(0, 32)}" is not a decimal number`);
  if (!Number.isSafeInteger(v)) throw ctx.corrupt(`${what} is too large`);
  return v;
}

/**
 * Go's strconv.ParseInt(s, 10, 64), which archive/tar uses for every pax number: a sign, decimal
 * digits, a value within 64 bits; null where Go returns an error. Past 2^53 the value is rounded.
 */
export function parseGoInt(s: string): number | null {
  // One pattern with a single way to match, so a megabyte of digits costs linear time.
  if (!/^[+-]?\d+$/.test(s)) return null;
  const negative = s[0] === '-';
  let start = s[0] === '-' || s[0] === '+' ? 1 : 0;
  while (start < s.length - 1 && s[start] === '0') start++;
  // 19 digits cover 2^63; checked before BigInt so a long number costs nothing more.
  if (s.length - start > 19) return null;
  const v = BigInt(s.slice(start)) * (negative ? -1n : 1n);
  if (v > (1n << 63n) - 1n || v < -(1n << 63n)) return null;
  return Number(v);
}

/** A NUL-terminated field, decoded as tar names are (decodeTarName: invalid UTF-8 kept distinct). */
export function cString(buf: Buffer, off: number, len: number): string {
  let end = buf.indexOf(0, off);
  if (end === -1 || end > off + len) end = off + len;
  return decodeTarName(buf, off, end);
}

/**
 * The name a header block itself stores, as Go's archive/tar (reader.go readHeader) builds it from
 * the header's format, which Docker, containerd and Podman extract layers with: `prefix/name` when
 * the format has a prefix, else the name field alone.
 */
export function headerName(blk: Buffer): string {
  const name = cString(blk, 0, 100);
  const prefix = headerPrefix(blk);
  return prefix === '' ? name : `${prefix}/${name}`;
}

function headerPrefix(blk: Buffer): string {
  const magic = blk.toString('latin1', 257, 263);
  if (magic === 'ustar\0') {
    // star keeps atime and ctime in the last 24 bytes of the ustar prefix, and ends the block with `tar\0`.
    const star = blk.toString('latin1', 508, 512) === 'tar\0';
    return cString(blk, 345, star ? 131 : 155);
  }
  if (magic === 'ustar ' && blk[263] === 0x20 && blk[264] === 0) return oldGnuPrefix(blk);
  return ''; // v7 (and anything else Go takes for v7): no prefix field
}

/**
 * Old GNU headers keep atime and ctime where ustar has its prefix, but Go writers before 1.8 put a
 * ustar prefix there. Go reads that area as the prefix when a time field that does not start with
 * NUL fails to parse and the area (up to its first NUL) is ASCII (golang.org/issues/12594, 21005).
 */
function oldGnuPrefix(blk: Buffer): string {
  const unparsable = (off: number) => blk[off] !== 0 && !goParsesNumeric(blk, off, 12);
  if (!unparsable(345) && !unparsable(357)) return '';
  let end = blk.indexOf(0, 345);
  if (end === -1 || end > 500) end = 500;
  for (let i = 345; i < end; i++) if ((blk[i] as number) >= 0x80) return '';
  return blk.toString('latin1', 345, end);
}
