import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../core/digest.js';
import { DigestMismatchError, PermanentError, RetryableError } from '../../core/errors.js';
import { HttpClient } from '../http.js';
import { RegistryClient } from './client.js';
import { CredentialStore } from './credentials.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
let http: HttpClient | undefined;

async function serve(handler: Handler): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

afterEach(async () => {
  await http?.close();
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

const data = Buffer.from('layer bytes '.repeat(5000));
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;

/** A registry stub with Basic auth that answers blob GETs through `blob`. */
async function registry(blob: Handler): Promise<{ client: RegistryClient; base: string }> {
  const base = await serve((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' });
      res.end();
      return;
    }
    blob(req, res);
  });
  http = new HttpClient({ sleep: async () => {}, retryBaseMs: 1 });
  const host = new URL(base).host;
  const credentials = CredentialStore.fromSources({
    dockerConfigPath: null,
    explicit: { [host]: { username: 'u', password: 'p' } },
  });
  return { client: new RegistryClient({ registry: host, http, credentials }), base };
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of it) chunks.push(c);
  return Buffer.concat(chunks);
}

describe('openBlob', () => {
  it('follows a redirect to another origin without the Authorization header', async () => {
    const seen: Array<string | undefined> = [];
    const cdn = await serve((req, res) => {
      seen.push(req.headers.authorization);
      res.end(data);
    });
    const { client } = await registry((_q, res) => {
      res.writeHead(307, { location: `${cdn}/data?verify=1` });
      res.end();
    });
    expect((await drain(await client.openBlob('a/b', digest))).equals(data)).toBe(true);
    expect(seen).toEqual([undefined]);
  });

  it('reports a redirect loop as a PermanentError', async () => {
    const other = await serve((req, res) => {
      res.writeHead(302, { location: req.url === '/one' ? '/two' : '/one' });
      res.end();
    });
    const { client } = await registry((_q, res) => {
      res.writeHead(307, { location: `${other}/one` });
      res.end();
    });
    const err = await client.openBlob('a/b', digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as Error).message).toMatch(/redirect loop/);
  });

  const SIG = 'X-Amz-Signature=SIGSECRET&X-Amz-Credential=AKIASECRET';

  /** The message of the error openBlob fails with, checked to be free of the signed URL's secrets. */
  async function redactedFailure(client: RegistryClient): Promise<string> {
    const err = await client.openBlob('a/b', digest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    const message = (err as Error).message;
    expect(`${message} ${inspect(err, { depth: 5 })}`).not.toMatch(/SIGSECRET|AKIASECRET/);
    return message;
  }

  it('redacts the signed URLs of a redirect loop in its message', async () => {
    const other = await serve((req, res) => {
      const next = req.url?.startsWith('/one') ? '/two' : '/one';
      res.writeHead(302, { location: `${next}?${SIG}` });
      res.end();
    });
    const { client } = await registry((_q, res) => {
      res.writeHead(307, { location: `${other}/one?${SIG}` });
      res.end();
    });
    expect(await redactedFailure(client)).toMatch(
      /redirect loop .*\/one\?X-Amz-Signature=%5Bredacted%5D.* was already visited/,
    );
  });

  it('redacts a signed URL that answers a redirect without a Location', async () => {
    const other = await serve((_req, res) => {
      res.writeHead(302);
      res.end();
    });
    const { client } = await registry((_q, res) => {
      res.writeHead(307, { location: `${other}/nolocation?${SIG}` });
      res.end();
    });
    expect(await redactedFailure(client)).toMatch(
      /nolocation\?X-Amz-Signature=%5Bredacted%5D.* without a Location/,
    );
  });

  it('redacts a signed URL that redirects to a non-HTTP URL or to no URL at all', async () => {
    for (const location of ['ftp://elsewhere/x', 'http://[bad']) {
      const other = await serve((_req, res) => {
        res.writeHead(302, { location });
        res.end();
      });
      const { client } = await registry((_q, res) => {
        res.writeHead(307, { location: `${other}/hop?${SIG}` });
        res.end();
      });
      expect(await redactedFailure(client)).toMatch(/hop\?X-Amz-Signature=%5Bredacted%5D.* redirected to/);
    }
  });

  it("blames a 401 of the redirect target on that host, not on the registry's blob URL", async () => {
    const cdn = await serve((_req, res) => {
      res.writeHead(401);
      res.end();
    });
    const cdnHost = new URL(cdn).host;
    const { client } = await registry((_q, res) => {
      res.writeHead(307, { location: `${cdn}/blob?${SIG}` });
      res.end();
    });
    const message = await redactedFailure(client);
    expect(message).toContain(`redirected to ${cdn}/blob?X-Amz-Signature=%5Bredacted%5D`);
    expect(message).toContain(`which answered 401 where blob bytes were expected`);
    expect(message).toContain(`the redirect target ${cdnHost} refused the download, not the registry`);
  });

  it('resumes with Range after the connection drops mid-body', async () => {
    const ranges: Array<string | undefined> = [];
    const { client } = await registry((req, res) => {
      ranges.push(req.headers.range);
      if (!req.headers.range) {
        res.writeHead(200, { 'content-length': String(data.length) });
        res.write(data.subarray(0, 1000));
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      }
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range)![1]);
      res.writeHead(206, {
        'content-length': String(data.length - start),
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
      });
      res.end(data.subarray(start));
    });
    expect((await drain(await client.openBlob('a/b', digest))).equals(data)).toBe(true);
    expect(ranges[0]).toBeUndefined();
    expect(ranges[1]).toMatch(/^bytes=\d+-$/);
  });

  /**
   * A blob GET answered chunked with the first `sent` bytes, the connection then cut before the body's last
   * chunk; a resume (any Range) answered 416, the registry having nothing past what it holds. Each request's
   * Range goes into `ranges`.
   */
  const cutThen416 =
    (sent: number, ranges: Array<string | undefined> = []) =>
    (req: IncomingMessage, res: ServerResponse) => {
      ranges.push(req.headers.range);
      if (req.headers.range) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        return;
      }
      res.writeHead(200);
      res.write(data.subarray(0, sent), () => setTimeout(() => res.socket?.destroy(), 10));
    };

  it('ends the blob when a connection dropped after its last byte has nothing more to resume (416)', async () => {
    const ranges: Array<string | undefined> = [];
    const { client } = await registry(cutThen416(data.length, ranges));
    expect((await drain(await client.openBlob('a/b', digest))).equals(data)).toBe(true);
    expect(ranges).toEqual([undefined, `bytes=${data.length}-`]);
  });

  it("takes a 416 short of the descriptor's size, after a dropped connection, as the registry's error", async () => {
    const { client } = await registry(cutThen416(1000));
    const read = drain(await client.openBlob('a/b', digest, { size: data.length }));
    await expect(read).rejects.toThrow(/resume at byte 1000 of 60000 answered 416/);
    await expect(read).rejects.toBeInstanceOf(RetryableError);
  });

  it("reads a 416's length with no descriptor size: short of it, the download is retried, not called a mismatch", async () => {
    const { client } = await registry(cutThen416(1000));
    const read = drain(await client.openBlob('a/b', digest));
    await expect(read).rejects.toThrow(/resume at byte 1000 of 60000 answered 416/);
    await expect(read).rejects.toBeInstanceOf(RetryableError);
  });

  it('resumes correctly when the server ignores Range and sends everything again', async () => {
    let n = 0;
    const { client } = await registry((_q, res) => {
      res.writeHead(200, { 'content-length': String(data.length) });
      if (n++ === 0) {
        res.write(data.subarray(0, 777));
        setTimeout(() => res.socket?.destroy(), 10);
        return;
      }
      res.end(data);
    });
    expect((await drain(await client.openBlob('a/b', digest))).equals(data)).toBe(true);
  });

  it('throws DigestMismatchError at the end when the bytes are corrupt', async () => {
    const bad = Buffer.from(data);
    bad[100] = bad[100]! ^ 0xff;
    const { client } = await registry((_q, res) => res.end(bad));
    await expect(drain(await client.openBlob('a/b', digest))).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it('yields the bytes unhashed with verify: false, for a caller that checks the digest itself', async () => {
    const bad = Buffer.from(data);
    bad[100] = bad[100]! ^ 0xff;
    const { client } = await registry((_q, res) => res.end(bad));
    expect((await drain(await client.openBlob('a/b', digest, { verify: false }))).equals(bad)).toBe(true);
  });
});
