import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError } from '../../core/errors.js';
import { HttpClient } from '../http.js';
import { RegistryClient } from './client.js';

describe('a plain-http registry port that redirects to https', () => {
  // What an nginx in front of a registry does on its port 80: every request gets a 301 to https.
  let server: Server;
  let host: string;
  const http = new HttpClient({ sleep: async () => {}, maxRetries: 0 });
  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(301, { location: `https://${req.headers.host}${req.url}` });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await http.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('fails a manifest HEAD naming the https Location and what to change', async () => {
    const client = new RegistryClient({ registry: host, http, scheme: 'http' });
    const err = await client.headManifest('a/b', '1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    const message = (err as Error).message;
    expect(message).toContain(`redirecting to https://${host}/v2/a/b/manifests/1`);
    expect(message).toContain(`the registry ${host} serves https, not plain http; drop --insecure-registry`);
  });

  it('fails a tags/list walk the same way', async () => {
    const client = new RegistryClient({ registry: host, http, scheme: 'http' });
    const walk = async () => {
      for await (const _ of client.listTags('a/b')) {
        // drained
      }
    };
    await expect(walk()).rejects.toThrow(/redirecting to https:\/\/.*serves https, not plain http/);
  });
});
