/**
 * A run's network (src/pipeline/network.ts) with its real sleeps, against the real registry behind the
 * fault proxy: a whole run's concurrency waiting out 429 pauses at once. Each such sleep listens to the
 * run's cut-off signal; Node warned of a "possible EventTarget memory leak" past ten of them, a false
 * alarm that a researcher watching a long crawl's log could not tell from a real leak.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import { configSchema } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/core/log.js';
import { CredentialStore } from '../../../src/crawler/registry/credentials.js';
import { RunNetwork } from '../../../src/pipeline/network.js';

const CONCURRENCY = 16;

let registry: RunningRegistry;
let proxy: FaultProxy;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});

describe('RunNetwork under a rate limit', () => {
  it('has a whole run wait out 429 pauses at once without a listener-leak warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const net = new RunNetwork({
      config: configSchema.parse({ concurrency: CONCURRENCY }),
      env: {},
      credentials: CredentialStore.fromSources({ env: {}, dockerConfigPath: null }),
      log: silentLogger(),
    });
    try {
      // Every first request is refused with a one-second pause; each then sleeps with no signal of its own.
      proxy.addRule({
        path: /^\/v2\/$/,
        times: CONCURRENCY,
        action: { kind: 'respond', status: 429, headers: { 'retry-after': '1' } },
      });
      const statuses = await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          const res = await net.http.request({ url: `${proxy.url}/v2/` });
          await res.dump();
          return res.status;
        }),
      );
      expect(statuses).toEqual(Array(CONCURRENCY).fill(200));
      const answers = proxy.log.map((e) => e.status);
      expect(answers.filter((s) => s === 429)).toHaveLength(CONCURRENCY);
      expect(answers.filter((s) => s === 200)).toHaveLength(CONCURRENCY);
      expect(net.http.stats.rateLimitPauses).toBeGreaterThan(0);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.map((w) => `${w.name}: ${w.message}`)).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await net.close();
    }
  });
});
