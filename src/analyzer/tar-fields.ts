/**
 * Decoding of the fixed fields of a 512-byte tar header block: octal and GNU base-256 numbers,
 * the header checksum, NUL-terminated strings and the ustar name/prefix pair, plus the decimal
 * numbers pax records and sparse maps carry. Pure functions over bytes; every malformation becomes
 * a CorruptInputError made by the caller's `corrupt`, so the message names the header's offset.
 */
import type { CorruptInputError } from '../core/errors.js';

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

/** Why a numeric field holds no number ('empty' is read as 0 everywhere but in the checksum). */
export type NumericFault = 'negative' | 'too-large' | 'not-octal' | 'empty';

/**
 * Octal (NUL/space padded) or GNU base-256 number, or the fault that keeps it from being one.
 * Returns instead of throwing, so the lenient mode read (once per entry) costs no exception when a
 * writer left the field malformed; parseNumeric turns the fault into the caller's typed error.
 */
export function readNumeric(blk: Buffer, off: number, len: number): number | NumericFault {
  const first = blk[off] as number;
  if (first & 0x80) {
    if (first === 0xff) return 'negative';
    let v = first & 0x7f;
    for (let i = off + 1; i < off + len; i++) {
      v = v * 256 + (blk[i] as number);
      if (v > Number.MAX_SAFE_INTEGER) return 'too-large';
    }
    return v;
  }
  let i = off;
  const end = off + len;
  while (i < end && (blk[i] === 0x20 || blk[i] === 0)) i++;
  if (i === end) return 'empty';
  let v = 0;
  for (; i < end; i++) {
    const c = blk[i] as number;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return 'not-octal';
    v = v * 8 + (c - 0x30);
  }
  for (; i < end; i++) {
    if (blk[i] !== 0 && blk[i] !== 0x20) return 'not-octal';
  }
  return v;
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

/** A decimal number as pax records and sparse maps write it: digits only, safe-integer sized. */
export function parseDecimal(s: string, what: string, ctx: HasCorrupt): number {
  if (!/^\d{1,16}$/.test(s)) throw ctx.corrupt(`${what} "${s.slice(0, 32)}" is not a decimal number`);
  const v = Number(s);
  if (!Number.isSafeInteger(v)) throw ctx.corrupt(`${what} is too large`);
  return v;
}

/** A NUL-terminated field as UTF-8 (invalid bytes become U+FFFD; paths are keys, never opened). */
export function cString(buf: Buffer, off: number, len: number): string {
  let end = buf.indexOf(0, off);
  if (end === -1 || end > off + len) end = off + len;
  return buf.toString('utf8', off, end);
}

/** The name a header block itself stores: ustar joins `prefix/name`, other formats have name only. */
export function headerName(blk: Buffer): string {
  const name = cString(blk, 0, 100);
  // The prefix field exists only in POSIX ustar; GNU headers keep atime/ctime there.
  if (blk.toString('latin1', 257, 263) !== 'ustar\0') return name;
  const prefix = cString(blk, 345, 155);
  return prefix === '' ? name : `${prefix}/${name}`;
}
