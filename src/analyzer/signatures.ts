/**
 * Byte signatures: YARA-style hex strings with `??` wildcards, found in a file streamed in chunks of
 * any size. Each signature is prefiltered on its longest literal run with Buffer.indexOf (native
 * memchr-class search) and only candidate positions are verified byte by byte. Matches spanning a
 * chunk boundary are found by re-scanning a small tail of (longest pattern − 1) bytes.
 */

/** A signature ready to scan with. */
export interface CompiledSignature {
  iocSetId: string;
  ruleId: string;
  /** Only report it in files starting with the ELF magic `7f 45 4c 46`. */
  elfOnly: boolean;
  /** The normalized hex (lowercase, `??` for wildcards, no spaces). */
  hex: string;
  /** Pattern bytes; wildcard positions hold 0. */
  bytes: Buffer;
  /** 1 where the byte must match, 0 for a `??` wildcard. */
  mask: Uint8Array;
  /** The longest run of literal bytes and where it sits in the pattern. */
  anchor: Buffer;
  anchorOffset: number;
}

/**
 * One signature hit: the first offset of the signature in the file, the pattern that found it (its
 * normalized hex), and whether the file is an ELF, so that a later rule of the same id is matched with the
 * hit only where the hit answers it (another pattern does not; an elfOnly rule needs an ELF).
 */
export interface SignatureHit {
  iocSetId: string;
  ruleId: string;
  offset: number;
  hex: string;
  inElf: boolean;
}

/** A hex pattern as compared and stored: lowercase, `??` for wildcards, no whitespace. */
export function normalizeHex(hex: string): string {
  return hex.replace(/\s+/g, '').toLowerCase();
}

/** Why a hex pattern is unusable, or null when it is fine. */
export function hexProblem(hex: string): string | null {
  const tokens = hex.replace(/\s+/g, '');
  if (tokens.length === 0) return 'expected a non-empty hex pattern';
  if (tokens.length % 2 !== 0) return 'expected an even number of hex digits (bytes or ?? wildcards)';
  for (let i = 0; i < tokens.length; i += 2) {
    const t = tokens.slice(i, i + 2);
    if (t !== '??' && !/^[0-9a-fA-F]{2}$/.test(t)) return `"${t}" is neither a hex byte nor ??`;
  }
  if (!/[0-9a-fA-F]{2}/.test(tokens.replace(/\?\?/g, ' ')))
    return 'a pattern needs at least one literal byte';
  return null;
}

/** Compile a hex pattern (`48 8d ?? 24`, spaces optional); throws a TypeError on a bad pattern. */
export function compileSignature(
  hex: string,
  ids: { iocSetId: string; ruleId: string; elfOnly?: boolean },
): CompiledSignature {
  const problem = hexProblem(hex);
  if (problem !== null) throw new TypeError(`signature ${ids.iocSetId}/${ids.ruleId}: ${problem}`);
  const compact = normalizeHex(hex);
  const n = compact.length / 2;
  const bytes = Buffer.alloc(n);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const t = compact.slice(i * 2, i * 2 + 2);
    if (t !== '??') {
      bytes[i] = Number.parseInt(t, 16);
      mask[i] = 1;
    }
  }
  let bestStart = 0;
  let bestLen = 0;
  for (let i = 0; i < n; ) {
    if (mask[i] === 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && mask[j] === 1) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  return {
    iocSetId: ids.iocSetId,
    ruleId: ids.ruleId,
    elfOnly: ids.elfOnly ?? false,
    hex: compact,
    bytes,
    mask,
    anchor: bytes.subarray(bestStart, bestStart + bestLen),
    anchorOffset: bestStart,
  };
}

function verify(buf: Buffer, start: number, sig: CompiledSignature): boolean {
  const { bytes, mask } = sig;
  for (let k = 0; k < bytes.length; k++) {
    if (mask[k] === 1 && buf[start + k] !== bytes[k]) return false;
  }
  return true;
}

/** First start in [minStart, maxStart) where the whole pattern fits in `buf` and matches, or -1. */
function findIn(buf: Buffer, sig: CompiledSignature, minStart: number, maxStart: number): number {
  const len = sig.bytes.length;
  let from = minStart + sig.anchorOffset;
  while (from < buf.length) {
    const idx = buf.indexOf(sig.anchor, from);
    if (idx < 0) return -1;
    const start = idx - sig.anchorOffset;
    if (start >= maxStart || start + len > buf.length) return -1;
    if (verify(buf, start, sig)) return start;
    from = idx + 1;
  }
  return -1;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const BATCH_BYTES = 16 * 1024;

/** Scans one file's bytes, pushed in order, for a set of signatures. Create one per file. */
export class SignatureScanner {
  private readonly sigs: CompiledSignature[];
  private readonly found: Array<number | null>;
  private readonly tailMax: number;
  private tail: Buffer = Buffer.alloc(0);
  /** Absolute file offset of `tail[0]`. */
  private tailStart = 0;
  private readonly head: number[] = [];
  private isElf: boolean | null = null;
  private remaining: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(sigs: CompiledSignature[]) {
    this.sigs = sigs;
    this.found = sigs.map(() => null);
    this.remaining = sigs.length;
    this.tailMax = Math.max(0, ...sigs.map((s) => s.bytes.length - 1));
  }

  /** Feed the next chunk of the file. */
  push(chunk: Uint8Array): void {
    if (this.remaining === 0 || chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // Tiny chunks are batched: a search per signature per 1-byte chunk would dominate the cost.
    if (buf.length < BATCH_BYTES) {
      this.pending.push(Buffer.from(buf));
      this.pendingBytes += buf.length;
      if (this.pendingBytes >= BATCH_BYTES) this.flushPending();
      return;
    }
    this.flushPending();
    this.scanChunk(buf);
  }

  private flushPending(): void {
    if (this.pendingBytes === 0) return;
    const joined = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.scanChunk(joined);
  }

  private scanChunk(buf: Buffer): void {
    if (this.remaining === 0) return;
    if (this.isElf === null) this.learnHead(buf);
    const chunkStart = this.tailStart + this.tail.length;
    // Matches starting in the tail: search tail + the first (tailMax) bytes of the chunk only.
    const boundary =
      this.tail.length > 0 ? Buffer.concat([this.tail, buf.subarray(0, this.tailMax)]) : Buffer.alloc(0);
    for (let s = 0; s < this.sigs.length; s++) {
      if (this.found[s] !== null) continue;
      const sig = this.sigs[s]!;
      if (sig.elfOnly && this.isElf === false) continue;
      let at = boundary.length > 0 ? findIn(boundary, sig, 0, this.tail.length) : -1;
      if (at >= 0) at += this.tailStart;
      else {
        const inChunk = findIn(buf, sig, 0, buf.length);
        if (inChunk >= 0) at = chunkStart + inChunk;
      }
      if (at >= 0) {
        this.found[s] = at;
        this.remaining--;
      }
    }
    // Keep the last tailMax bytes of everything seen so far.
    if (buf.length >= this.tailMax) {
      this.tail = Buffer.from(buf.subarray(buf.length - this.tailMax));
    } else {
      const joined = Buffer.concat([this.tail, buf]);
      this.tail = joined.subarray(Math.max(0, joined.length - this.tailMax));
    }
    this.tailStart = chunkStart + buf.length - this.tail.length;
  }

  /** The first offset of every signature seen; elfOnly signatures only when the file is an ELF. */
  finish(): SignatureHit[] {
    this.flushPending();
    const hits: SignatureHit[] = [];
    for (let s = 0; s < this.sigs.length; s++) {
      const at = this.found[s];
      const sig = this.sigs[s]!;
      if (at === null || at === undefined) continue;
      if (sig.elfOnly && this.isElf !== true) continue;
      hits.push({
        iocSetId: sig.iocSetId,
        ruleId: sig.ruleId,
        offset: at,
        hex: sig.hex,
        inElf: this.isElf === true,
      });
    }
    return hits;
  }

  private learnHead(buf: Buffer): void {
    for (let i = 0; i < buf.length && this.head.length < 4; i++) {
      const b = buf[i]!;
      if (b !== ELF_MAGIC[this.head.length]) {
        this.isElf = false;
        return;
      }
      this.head.push(b);
    }
    if (this.head.length === 4) this.isElf = true;
  }
}
