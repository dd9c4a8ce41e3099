/**
 * Metadata members that describe the member after them: POSIX pax extended headers (`x`, with
 * GNU's sparse keys) and GNU long names and link targets (`L`, `K`), plus pax global headers (`g`).
 * Their data is collected by the parser (bounded by maxHeaderBytes) and applied here to the pending
 * records the next entry reads. How records combine follows Go's archive/tar (reader.go next,
 * parsePAX), which Docker, containerd and Podman apply layers with: a different rule here would let
 * a crafted layer show hubcrawl one name while the runtime writes the file under another.
 */
import { cString, type HasCorrupt } from './tar-fields.js';
import { decodeTarName } from './tar-name.js';

/** Metadata records waiting for the entry they describe. */
export interface Pending {
  /**
   * The records of the last `x` header; a key whose value is empty is absent (see parsePax). GNU
   * sparse 0.0 offset/numbytes records are already joined into `GNU.sparse.map`, as Go joins them.
   */
  pax: Map<string, string>;
  /** The last `L` and `K` records; an empty one is kept (it cancels an earlier one) but names nothing. */
  longName: string | null;
  longLink: string | null;
}

/** Nothing pending: the state after each entry, since records describe the next entry only. */
export function freshPending(): Pending {
  return { pax: new Map(), longName: null, longLink: null };
}

/** Typeflags of the members that carry metadata instead of being an entry of their own. */
export function isMetaTypeflag(typeflag: string): boolean {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K';
}

/** Applies the whole data of one metadata member to `p`. */
export function applyMeta(p: Pending, typeflag: string, data: Buffer, ctx: HasCorrupt): void {
  if (typeflag === 'L') p.longName = cString(data, 0, data.length);
  else if (typeflag === 'K') p.longLink = cString(data, 0, data.length);
  else if (typeflag === 'x') parsePax(data, p, ctx);
  else if (typeflag === 'g') {
    // Go parses a global header like an `x` (so a malformed one fails the layer there too), then
    // returns it as an entry of its own, which drops whatever was pending; Docker ignores that entry.
    parsePax(data, freshPending(), ctx);
    Object.assign(p, freshPending());
  }
}

/**
 * pax extended header records: `<len> <key>=<value>\n`, where len counts the whole record. They
 * replace the records of an earlier `x` (Go keeps one map, the last), not the GNU long name or link.
 * An empty value is dropped: Go's mergePAX keeps the header's own field for it, and its sparse
 * checks read it as absent.
 *
 * GNU sparse 0.0 repeats `GNU.sparse.offset` and `GNU.sparse.numbytes` once per run. Like Go's
 * parsePAX, they must alternate (offset first) and hold no comma, or the layer is corrupt; they are
 * joined, unparsed, into `GNU.sparse.map` (replacing one given outright), and their numbers are read
 * only once the member is known to be pax sparse (sparseFromPax). Reading them earlier failed
 * layers whose member Go reads as a regular file (a GNU sparse version it does not know).
 */
export function parsePax(data: Buffer, p: Pending, ctx: HasCorrupt): void {
  p.pax = new Map();
  const sparseMap: string[] = [];
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
    // `=` is ASCII, so the first one in the bytes is the first one in the text.
    const eq = data.indexOf(0x3d, space + 1);
    if (eq === -1 || eq >= end - 1 || eq === space + 1) throw ctx.corrupt('pax record without a key');
    const key = decodeTarName(data, space + 1, eq);
    const value = decodeTarName(data, eq + 1, end - 1);
    if (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes') {
      const want = sparseMap.length % 2 === 0 ? 'GNU.sparse.offset' : 'GNU.sparse.numbytes';
      if (key !== want) throw ctx.corrupt(`pax record ${key} out of order (expected ${want})`);
      if (value.includes(',')) throw ctx.corrupt(`pax record ${key} holds a comma`);
      sparseMap.push(value);
    } else if (value === '') p.pax.delete(key);
    else p.pax.set(key, value);
    off = end;
  }
  if (sparseMap.length > 0) {
    const joined = sparseMap.join(',');
    if (joined === '') p.pax.delete('GNU.sparse.map');
    else p.pax.set('GNU.sparse.map', joined);
  }
}
