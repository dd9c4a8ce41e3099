import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LimitExceededError } from '../core/errors.js';
import { CaptureBuffer, FileHasher } from './file-hasher.js';

describe('FileHasher', () => {
  it('gives the same digests as hashing the whole buffer at once', () => {
    const data = Buffer.from('the quick brown fox jumps over the lazy dog'.repeat(100));
    const h = new FileHasher();
    for (let i = 0; i < data.length; i += 7) h.update(data.subarray(i, i + 7));
    expect(h.digest()).toEqual({
      sha256: createHash('sha256').update(data).digest('hex'),
      md5: createHash('md5').update(data).digest('hex'),
    });
    expect(h.bytes).toBe(data.length);
  });
});

describe('CaptureBuffer', () => {
  it('copies chunks, so reusing the caller buffer does not change the capture', () => {
    const c = new CaptureBuffer('/etc/os-release', 100);
    const buf = Buffer.from('ID=debian\n');
    c.update(buf);
    buf.fill(0x41);
    expect(c.text()).toBe('ID=debian\n');
  });

  it('refuses to grow past maxCaptureBytes', () => {
    const c = new CaptureBuffer('/var/lib/dpkg/status', 10);
    c.update(Buffer.alloc(10));
    expect(() => c.update(Buffer.alloc(1))).toThrow(LimitExceededError);
  });
});
