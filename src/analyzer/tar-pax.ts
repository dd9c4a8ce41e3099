/**
 * Metadata members that describe the member after them: POSIX pax extended headers (`x`, with
 * GNU's sparse keys) and GNU long names and link targets (`L`, `K`). Their data is collected by the
 * parser (bounded by maxHeaderBytes) and applied here to the pending records the next entry reads.
 */
import { cString, type HasCorrupt, parseDecimal } from './tar-fields.js';

/** Metadata records waiting for the entry they describe. */
export interface Pending {
  pax: Map<string, string>;
  sparseOffsets: number[];
  sparseNumbytes: number[];
  longName: string | null;
  longLink: string | null;
  bytes: number;
}

/** Nothing pending: the state after each entry, since records describe the next entry only. */
export function freshPending(): Pending {
  return { pax: new Map(), sparseOffsets: [], sparseNumbytes: [], longName: null, longLink: null, bytes: 0 };
}

/** Typeflags of the members that carry metadata for the next entry instead of being one. */
export function isMetaTypeflag(typeflag: string): boolean {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K';
}

/** Applies the whole data of one metadata member to `p`. */
export function applyMeta(p: Pending, typeflag: string, data: Buffer, ctx: HasCorrupt): void {
  if (typeflag === 'L') p.longName = cString(data, 0, data.length);
  else if (typeflag === 'K') p.longLink = cString(data, 0, data.length);
  else if (typeflag === 'x') parsePax(data, p, ctx);
  // 'g' (pax global) records are bounded and skipped: no writer we meet puts paths in them.
}

/** pax extended header records: `<len> <key>=<value>\n`, where len counts the whole record. */
export function parsePax(data: Buffer, p: Pending, ctx: HasCorrupt): void {
  let off = 0;
  while (off < data.length) {
    if (data[off] === 0) break; // some writers pad the record block with NULs
    const space = data.indexOf(0x20, off);
    if (space === -1 || space - off > 8) throw ctx.corrupt('pax record without a length');
    const lenText = data.toString('latin1', off, space);
    if (!/^\d+$/.test(lenText)) throw ctx.corrupt(`pax record length "${lenText}" is not a number`);
    const len = Number(lenText);
    const end = off + len;
    if (len <= space - off + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw ctx.corrupt('pax record length does not match its contents');
    }
    const record = data.toString('utf8', space + 1, end - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw ctx.corrupt('pax record without a key');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    // GNU sparse 0.0 repeats these two keys once per segment, in order.
    if (key === 'GNU.sparse.offset') p.sparseOffsets.push(parseDecimal(value, key, ctx));
    else if (key === 'GNU.sparse.numbytes') p.sparseNumbytes.push(parseDecimal(value, key, ctx));
    else p.pax.set(key, value);
    off = end;
  }
}
