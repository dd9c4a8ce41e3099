/**
 * GNU sparse files: reading their maps (old-GNU header and extension blocks, pax 0.0 repeated
 * records, pax 0.1 `GNU.sparse.map`, the 1.0 map at the start of the data) and expanding the stored
 * runs back into the logical content, holes written as zeros. The parser decides where the map
 * comes from and bounds its size; this module only decodes and checks it.
 */
import type { TarEntrySink } from './tar-entry.js';
import { type HasCorrupt, parseDecimal, parseNumeric } from './tar-fields.js';

/** One stored run of a sparse file: `length` bytes that belong at logical `offset`. */
export interface SparseSegment {
  offset: number;
  length: number;
}

/** Old-GNU sparse map entries (offset/length pairs of 12-byte numbers) from a header or extension block. */
export function readSparseEntries(
  blk: Buffer,
  off: number,
  count: number,
  map: SparseSegment[],
  ctx: HasCorrupt,
): void {
  for (let i = 0; i < count; i++) {
    const at = off + i * 24;
    if (blk[at] === 0) break;
    const offset = parseNumeric(blk, at, 12, 'sparse offset', ctx);
    const length = parseNumeric(blk, at + 12, 12, 'sparse length', ctx);
    map.push({ offset, length });
  }
}

/** How a pax sparse member keeps its map: in the records (GNU 0.0 and 0.1) or at the start of its data (1.0). */
export type PaxSparseFormat = '0.x' | '1.0';

/**
 * Whether the pending records make a member pax sparse, decided as Go's readGNUSparsePAXHeaders does
 * (runtimes extract layers with it): a known GNU.sparse.major/minor pair, else a non-empty
 * GNU.sparse.map (0.1, or the joined 0.0 offsets, see parsePax) without a version. Anything else is
 * a regular file, and its GNU.sparse.* records mean nothing, GNU.sparse.name included.
 */
export function paxSparseFormat(pax: Map<string, string>): PaxSparseFormat | null {
  const major = pax.get('GNU.sparse.major') ?? '';
  const minor = pax.get('GNU.sparse.minor') ?? '';
  if (major === '0' && (minor === '0' || minor === '1')) return '0.x';
  if (major === '1' && minor === '0') return '1.0';
  if (major !== '' || minor !== '') return null; // a version Go does not know
  return pax.has('GNU.sparse.map') ? '0.x' : null;
}

/**
 * The sparse map of a pax 0.0 (offset/numbytes records, joined by parsePax) or 0.1
 * (`GNU.sparse.map`) member; called only for a member paxSparseFormat calls '0.x', so its numbers
 * are read here, as Go reads them in readGNUSparseMap0x1, and not before.
 */
export function sparseFromPax(pax: Map<string, string>, ctx: HasCorrupt): SparseSegment[] {
  const text = pax.get('GNU.sparse.map');
  if (text === undefined) throw ctx.corrupt('pax sparse member without a sparse map');
  const nums = text.split(',').map((n) => parseDecimal(n, 'GNU.sparse.map value', ctx));
  if (nums.length % 2 !== 0) throw ctx.corrupt('GNU.sparse.map has an odd number of values');
  const map: SparseSegment[] = [];
  for (let i = 0; i < nums.length; i += 2)
    map.push({ offset: nums[i] as number, length: nums[i + 1] as number });
  return map;
}

/**
 * GNU sparse 1.0 map: decimal lines (count, then offset/length pairs) at the start of the member's
 * data, padded to a block. Fed as the data arrives; each line is parsed once, at the block boundary
 * it completes in, so a hostile map as large as maxHeaderBytes costs linear time, not a re-parse of
 * everything so far per block (that took 139 s for a 1 MiB map of "0" lines).
 */
export class SparseV1MapReader {
  /** The line still waiting for its newline, in pieces, so a long one is joined only once. */
  private partial: string[] = [];
  /** Lines complete but not yet parsed: parsing waits for the block boundary, as errors do. */
  private lines: string[] = [];
  private readonly nums: number[] = [];

  constructor(private readonly ctx: HasCorrupt) {}

  /** Takes the next bytes of the member's data. */
  append(view: Buffer): void {
    let start = 0;
    for (let nl = view.indexOf(0x0a); nl !== -1; nl = view.indexOf(0x0a, start)) {
      this.partial.push(view.toString('latin1', start, nl));
      this.lines.push(this.partial.join(''));
      this.partial = [];
      start = nl + 1;
    }
    if (start < view.length) this.partial.push(view.toString('latin1', start));
  }

  /** Parses the lines completed so far: the map once its last pair is in, null while incomplete. */
  take(): SparseSegment[] | null {
    const lines = this.lines;
    this.lines = [];
    for (const line of lines) {
      this.nums.push(parseDecimal(line, 'GNU sparse 1.0 map value', this.ctx));
      const count = this.nums[0] as number;
      if (this.nums.length === 1 + 2 * count) {
        const map: SparseSegment[] = [];
        for (let j = 1; j < this.nums.length; j += 2)
          map.push({ offset: this.nums[j] as number, length: this.nums[j + 1] as number });
        return map;
      }
    }
    return null;
  }
}

const ZEROS = Buffer.alloc(64 * 1024);

/** Turns a sparse file's stored runs back into its logical content, writing zeros for the holes. */
export class SparseExpander implements TarEntrySink {
  private seg = 0;
  private segDone = 0;
  private pos = 0;

  constructor(
    private readonly map: SparseSegment[],
    private readonly realSize: number,
    stored: number,
    private readonly sink: TarEntrySink,
    ctx: HasCorrupt,
  ) {
    let end = 0;
    let total = 0;
    for (const s of map) {
      if (s.offset < end || s.offset + s.length > realSize)
        throw ctx.corrupt('sparse map runs overlap or pass the file size');
      end = s.offset + s.length;
      total += s.length;
    }
    if (total !== stored)
      throw ctx.corrupt(`sparse map covers ${total} bytes but the member stores ${stored}`);
  }

  write(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) {
      let s = this.map[this.seg] as SparseSegment;
      while (this.segDone === s.length) {
        this.seg++;
        this.segDone = 0;
        s = this.map[this.seg] as SparseSegment;
      }
      if (this.pos < s.offset) this.zeros(s.offset - this.pos);
      const n = Math.min(s.length - this.segDone, chunk.length - off);
      this.sink.write(chunk.subarray(off, off + n));
      off += n;
      this.segDone += n;
      this.pos += n;
    }
  }

  end(): void {
    this.zeros(this.realSize - this.pos);
    this.sink.end();
  }

  private zeros(n: number): void {
    let left = n;
    while (left > 0) {
      const k = Math.min(left, ZEROS.length);
      this.sink.write(ZEROS.subarray(0, k));
      left -= k;
    }
    this.pos += n;
  }
}
