/**
 * RunNetwork.cutOff() (src/pipeline/network.ts) must end every request in flight, whichever undici pool
 * carries it. undici's Agent does not always know: it closes the connection after every HEAD (client-h1.js,
 * "Close after a HEAD request", undici#258), and when that leaves an origin's pool with no connection
 * (agent.js counts them on 'connect'/'disconnect') the Agent forgets the pool and close()s it gracefully,
 * although a request sent right after the HEAD is already queued there. That request then rides an
 * untracked pool, and so does the next pool of the origin: the forgotten pool's own 'disconnect' later
 * decrements the entry of the same origin key, which is by then the new pool's. Agent.destroy() misses
 * both, so a run cut there waited for the headers (or body) timeout. A crawl does exactly that: a tag HEAD,
 * the manifest GET, the config blob GET. Real registry on loopback behind the fault proxy, which holds or
 * stalls a request so the cut comes while it is in flight.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { configSchema } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/core/log.js';
import { CredentialStore } from '../../../src/crawler/registry/credentials.js';
import { RunNetwork } from '../../../src/pipeline/network.js';

const registry = inject('registries').none;
let proxy: FaultProxy;

beforeAll(async () => {
  proxy = await startFaultProxy(registry.url);
});

afterAll(async () => {
  await proxy?.stop();
});

/**
 * No retries, so the error a request ends with is what ended its one attempt. The timeout is the one that
 * ended these requests before the fix: short enough that a regression fails on the assertion, with the
 * error, rather than on the test's own timeout.
 */
function runNetwork(): RunNetwork {
  return new RunNetwork({
    config: configSchema.parse({ http: { maxRetries: 0, timeoutMs: 10_000 } }),
    env: {},
    credentials: CredentialStore.fromSources({ env: {}, dockerConfigPath: null }),
    log: silentLogger(),
  });
}

/** Holds the next GET of `path` at the proxy and cuts the run's network once it is there. */
function cutWhenHeld(net: RunNetwork, path: RegExp): { release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  proxy.addRule({
    method: 'GET',
    path,
    action: {
      kind: 'hold',
      until: () => {
        net.cutOff();
        return released;
      },
    },
  });
  return { release };
}

/** What ended a request: the transport error's code under a RetryableError (a timeout), else the error's name. */
function whatEnded(err: unknown): string | undefined {
  const e = err as { name?: string; cause?: { code?: string } } | undefined;
  return e?.cause?.code ?? e?.name;
}

/** A HEAD whose connection undici closes as it completes, as it does after every HEAD. */
async function head(net: RunNetwork, path: string): Promise<void> {
  const res = await net.http.request({ url: `${proxy.url}${path}`, method: 'HEAD' });
  expect(res.status).toBe(200);
  await res.dump();
}

describe('RunNetwork.cutOff', () => {
  it('ends a GET waiting for its headers that was sent right after a HEAD to the same registry', async () => {
    const net = runNetwork();
    const held = cutWhenHeld(net, /^\/v2\/_catalog/);
    try {
      await head(net, '/v2/');
      const err = await net.http.request({ url: `${proxy.url}/v2/_catalog`, buffer: true }).catch((e) => e);
      // The cut, not UND_ERR_HEADERS_TIMEOUT: the cut missed it then, and the timeout ended it.
      expect(whatEnded(err)).toBe('AbortError');
    } finally {
      held.release();
      await net.close();
    }
  });

  it('ends a GET waiting for its headers on the pool the Agent made after it forgot one', async () => {
    const net = runNetwork();
    const held = cutWhenHeld(net, /^\/v2\/_catalog/);
    try {
      // HEAD tag, GET manifest, GET config blob: the crawl's own sequence on one registry.
      await head(net, '/v2/');
      const first = await net.http.request({ url: `${proxy.url}/v2/`, buffer: true });
      expect(first.status).toBe(200);
      const err = await net.http.request({ url: `${proxy.url}/v2/_catalog`, buffer: true }).catch((e) => e);
      expect(whatEnded(err)).toBe('AbortError');
    } finally {
      held.release();
      await net.close();
    }
  });

  it('ends a body that stalls after its first bytes on a pool the Agent forgot', async () => {
    const net = runNetwork();
    // Longer than the body timeout, so only the cut or that timeout can end the read.
    proxy.addRule({
      method: 'GET',
      path: /^\/v2\/_catalog/,
      action: { kind: 'stall-body', afterBytes: 4, stallMs: 20_000 },
    });
    try {
      await head(net, '/v2/');
      const res = await net.http.request({ url: `${proxy.url}/v2/_catalog` });
      expect(res.status).toBe(200);
      const body = res.body[Symbol.asyncIterator]();
      expect((await body.next()).done).toBe(false);
      net.cutOff();
      const err = await body.next().catch((e) => e);
      // The cut, not UND_ERR_BODY_TIMEOUT: the cut missed it then, and the timeout ended it.
      expect(whatEnded(err)).toBe('AbortError');
    } finally {
      await net.close();
    }
  });
});
