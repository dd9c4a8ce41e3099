/**
 * The window a zstd frame declares, read from its Frame_Header (RFC 8878 section 3.1.1.1), and a
 * tracker that keeps the first bytes of the frame a streaming decoder is in. zstd-napi refuses a
 * frame whose window is over windowLogMax with only "Frame requires too much memory for decoding";
 * the header says how much the frame wanted, which is what a LimitExceededError should report.
 */

/** Longest Frame_Header: magic 4 + descriptor 1 + Window_Descriptor 1 + Dictionary_ID 4 + Frame_Content_Size 8. */
export const FRAME_HEADER_MAX = 18;

/** 0xFD2FB528, stored little-endian. */
const FRAME_MAGIC = 0xfd2fb528;
/** Dictionary_ID_flag and Frame_Content_Size_flag (under Single_Segment_flag) to field sizes. */
const DICT_ID_BYTES = [0, 1, 2, 4] as const;
const SINGLE_SEGMENT_FCS_BYTES = [1, 2, 4, 8] as const;

/**
 * The window size the zstd frame starting at `header[0]` declares, or null when the bytes are too
 * few, not a zstd frame (skippable frames have no window) or break the header's reserved bit.
 */
export function zstdFrameWindowSize(header: Uint8Array): number | null {
  if (header.length < 5) return null;
  const b = (i: number) => header[i] as number;
  if ((b(0) | (b(1) << 8) | (b(2) << 16) | (b(3) << 24)) >>> 0 !== FRAME_MAGIC) return null;
  const descriptor = b(4);
  if (descriptor & 0x08) return null; // Reserved_bit: a decoder must refuse the frame
  if ((descriptor & 0x20) === 0) {
    if (header.length < 6) return null;
    const wd = b(5);
    const windowBase = 2 ** (10 + (wd >> 3));
    return windowBase + (windowBase / 8) * (wd & 7);
  }
  // Single_Segment_flag: no Window_Descriptor; the window is the whole content (section 3.1.1.1.2).
  const at = 5 + (DICT_ID_BYTES[descriptor & 3] as number);
  const size = SINGLE_SEGMENT_FCS_BYTES[descriptor >> 6] as number;
  if (header.length < at + size) return null;
  let contentSize = 0;
  for (let i = at + size - 1; i >= at; i--) contentSize = contentSize * 256 + b(i);
  // The 2-byte field stores the size minus 256 (sizes below 256 take the 1-byte field).
  return size === 2 ? contentSize + 256 : contentSize;
}

/**
 * The first FRAME_HEADER_MAX bytes of the frame a streaming decoder is in. zstd's streaming
 * decoder stops consuming at the end of each frame, so the bytes each call consumed belong to one
 * frame, and a call returning 0 (frame decoded and flushed) means the next byte starts a new one.
 * A refused window is reported by the call that completes the header, so the header is what was
 * kept plus the start of that call's input. Copies at most FRAME_HEADER_MAX bytes per frame.
 */
export class ZstdFrameHeader {
  private readonly bytes = new Uint8Array(FRAME_HEADER_MAX);
  private fill = 0;
  /** Largest window of the frames decoded to their end (0 for skippable frames). */
  largestWindow = 0;

  /** Notes that the decoder consumed the first `n` bytes of `src`; a return of 0 ends the frame. */
  step(src: Uint8Array, n: number, ret: number): void {
    const k = Math.min(n, FRAME_HEADER_MAX - this.fill);
    for (let i = 0; i < k; i++) this.bytes[this.fill++] = src[i] as number;
    if (ret !== 0) return;
    const window = zstdFrameWindowSize(this.bytes.subarray(0, this.fill)) ?? 0;
    if (window > this.largestWindow) this.largestWindow = window;
    this.fill = 0;
  }

  /** The current frame's header bytes, completed from `src`, the input of the call that failed. */
  completedBy(src: Uint8Array): Uint8Array {
    return joinHeader(this.bytes.subarray(0, this.fill), src);
  }
}

/** `seen` (the header bytes kept so far) followed by the first bytes of `next`, FRAME_HEADER_MAX at most. */
export function joinHeader(seen: Uint8Array, next: Uint8Array): Uint8Array {
  const joined = new Uint8Array(Math.min(FRAME_HEADER_MAX, seen.length + next.length));
  joined.set(seen.subarray(0, joined.length));
  if (joined.length > seen.length) joined.set(next.subarray(0, joined.length - seen.length), seen.length);
  return joined;
}
