import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../core/log.js';
import type { CrawlProgress } from '../pipeline/run.js';
import { createProgressReporter, progressLine } from './progress.js';

const sample: CrawlProgress = {
  counters: {
    repositories: 2,
    tags: 5,
    images: 4,
    layersAnalyzed: 3,
    layersReused: 6,
    layerBytes: 12_345_678,
    itemsFailed: 1,
  },
  http: {
    requests: 40,
    byMethod: {},
    byStatusClass: {},
    retries: 2,
    rateLimitPauses: 1,
    rateLimitPauseMs: 1000,
    countedPulls: 7,
    bytesReceived: 0,
    failures: 0,
  },
  open: 9,
  inFlight: 2,
  rateLimitedUntil: 1_000_000 + 42_000,
};

describe('progress display', () => {
  it('names repositories, tags, images, layers, bytes, pulls and the rate-limit wait left', () => {
    expect(progressLine(sample, 1_000_000)).toBe(
      'repos 2 · tags 5 · images 4 · layers 3 (+6 known) · 12.3 MB · pulls 7 · retries 2 · failed 1 · queued 9 · rate-limited, 42s left',
    );
  });

  it('redraws one line in place on a terminal', () => {
    const out = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
    Object.assign(out, { isTTY: true, columns: 200 });
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const r = createProgressReporter({ stream: out, log: createLogger({ level: 'silent' }), quiet: false });
    r.update(sample);
    r.done();
    expect(text.startsWith('\r\x1b[Krepos 2')).toBe(true);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('logs a plain line instead when stderr is not a terminal', () => {
    const logs = new PassThrough();
    let text = '';
    logs.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const out = new PassThrough() as unknown as NodeJS.WriteStream;
    const r = createProgressReporter({
      stream: out,
      log: createLogger({ destination: logs }),
      quiet: false,
      logEveryMs: 0,
    });
    r.update(sample);
    expect(JSON.parse(text.trim()).msg).toContain('repos 2 · tags 5');
  });
});
