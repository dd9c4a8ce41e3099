import { afterEach, describe, expect, it } from 'vitest';
import { onStopSignal } from './stop-signals.js';

const listening = () => [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];

describe('onStopSignal', () => {
  const before = listening();
  let release: (() => void) | undefined;
  afterEach(() => release?.());

  it('hands over the first signal only, then listens for neither, so a second takes Node’s default', () => {
    const seen: string[] = [];
    release = onStopSignal((s) => seen.push(s));
    expect(listening()).toEqual(before.map((n) => n + 1));
    process.emit('SIGTERM', 'SIGTERM');
    expect(seen).toEqual(['SIGTERM']);
    expect(listening()).toEqual(before);
  });

  it('stops listening for both when released before any came', () => {
    const seen: string[] = [];
    onStopSignal((s) => seen.push(s))();
    expect(listening()).toEqual(before);
    expect(seen).toEqual([]);
  });
});
