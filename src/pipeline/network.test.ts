import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { configSchema } from '../config/schema.js';
import { createLogger } from '../core/log.js';
import { CredentialStore } from '../crawler/registry/credentials.js';
import { RunNetwork } from './network.js';

const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-network-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A run's network over a Docker config whose docker.io entry is `entry`, with its log lines. */
function networkWith(entry: Record<string, string>, hubApiUrl?: string) {
  const dockerConfigPath = join(dir, `config-${Object.keys(entry).join('-')}.json`);
  writeFileSync(dockerConfigPath, JSON.stringify({ auths: { 'https://index.docker.io/v1/': entry } }));
  const lines: Array<{ level: number; msg: string }> = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const net = new RunNetwork({
    config: configSchema.parse(hubApiUrl ? { hubApiUrl } : {}),
    env: {},
    credentials: CredentialStore.fromSources({ dockerConfigPath, env: {} }),
    log: createLogger({ level: 'info', destination }),
  });
  return { net, lines };
}

describe('RunNetwork: the Docker Hub web API sign-in from the docker.io login', () => {
  it('signs in with a docker login password or access token', async () => {
    const auth = Buffer.from('alice:dckr_pat_x').toString('base64');
    const { net, lines } = networkWith({ auth });
    expect(net.hub.authenticated).toBe(true);
    expect(lines).toEqual([]);
    await net.close();
  });

  it('lists anonymously with an identity token, which the web API does not take, and says so once', async () => {
    const { net, lines } = networkWith({ identitytoken: 'refresh-me' });
    expect(net.hub.authenticated).toBe(false);
    expect(net.hub.authenticated).toBe(false);
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/identity token.*listing anonymously/)]);
    expect(JSON.stringify(lines)).not.toContain('refresh-me');
    await net.close();
  });

  it('says nothing about the docker.io login to a Hub API mirror, which never gets it anyway', async () => {
    const { net, lines } = networkWith({ identitytoken: 'refresh-me' }, 'https://hub-mirror.example');
    expect(net.hub.authenticated).toBe(false);
    expect(lines).toEqual([]);
    await net.close();
  });
});
