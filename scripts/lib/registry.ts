/**
 * Runs the real distribution registry (Debian package `docker-registry`, distribution 2.8)
 * on a free loopback port, in one of three auth flavours, for tests and the demo.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type StartedTokenService, startTokenService, type TokenServiceHandle } from './token-service.js';

export type { StartedTokenService, TokenServiceHandle };
export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface RunningRegistry {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  auth: RegistryAuth;
  /** Credentials for the htpasswd and token flavours (the token service accepts them via Basic). */
  username?: string;
  password?: string;
  /** Token flavour: the running token service the registry trusts (with its counters and logs). */
  token?: StartedTokenService;
  dataDir: string;
  /** Kills the process and removes the temp dirs this launcher created. */
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  auth?: RegistryAuth;
  /** Storage root; a temp dir (removed on stop) when omitted. */
  dataDir?: string;
  /** When the binary is missing and we are root, `apt-get install -y docker-registry`. */
  installIfMissing?: boolean;
  tokenExpiresInSec?: number;
}

export const REGISTRY_BINARY = '/usr/bin/docker-registry';
export const TEST_USERNAME = 'hubcrawl';
export const TEST_PASSWORD = 'hubcrawl-test-password';

/** Asks the kernel for a free loopback port (there is a small race until the registry binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// Registries still running when this process exits (a crashed test run, a forgotten stop()):
// kill them and drop their temp dirs, so no server outlives its owner.
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;
function track(child: ChildProcess, workDir: string): void {
  live.set(child, workDir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [c, dir] of live) {
      c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

function ensureBinary(installIfMissing: boolean): void {
  if (existsSync(REGISTRY_BINARY)) return;
  if (installIfMissing && process.getuid?.() === 0) {
    execFileSync('apt-get', ['install', '-y', 'docker-registry'], { stdio: 'inherit' });
    if (existsSync(REGISTRY_BINARY)) return;
  }
  throw new Error(
    `${REGISTRY_BINARY} not found: install the Debian package "docker-registry" (apt-get install -y docker-registry)`,
  );
}

function registryConfig(port: number, dataDir: string, authBlock: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(dataDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    authBlock,
    '',
  ].join('\n');
}

async function waitUntilUp(url: string, child: ChildProcess, stderr: () => string): Promise<void> {
  // Bounded: 200 × 50 ms = 10 s, which a cold start of the registry never needs.
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) {
      throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr()}`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`docker-registry at ${url} did not answer /v2/ within 10 s: ${stderr()}`);
}

/** Starts a real registry on a free 127.0.0.1 port and waits until `/v2/` answers. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<RunningRegistry> {
  const auth = opts.auth ?? 'none';
  ensureBinary(opts.installIfMissing ?? false);
  const workDir = await mkdtemp(join(tmpdir(), 'hubcrawl-registry-'));
  const dataDir = opts.dataDir ?? join(workDir, 'data');
  let token: StartedTokenService | undefined;
  let authBlock = '';
  if (auth === 'htpasswd') {
    const line = execFileSync('htpasswd', ['-Bbn', TEST_USERNAME, TEST_PASSWORD], { encoding: 'utf8' });
    const htpasswdPath = join(workDir, 'htpasswd');
    await writeFile(htpasswdPath, `${line.trim()}\n`);
    authBlock = [
      'auth:',
      '  htpasswd:',
      '    realm: hubcrawl-test',
      `    path: ${JSON.stringify(htpasswdPath)}`,
    ].join('\n');
  } else if (auth === 'token') {
    token = await startTokenService({
      username: TEST_USERNAME,
      password: TEST_PASSWORD,
      certDir: join(workDir, 'token'),
      ...(opts.tokenExpiresInSec !== undefined ? { expiresInSec: opts.tokenExpiresInSec } : {}),
    });
    authBlock = [
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(token.realm)}`,
      `    service: ${JSON.stringify(token.service)}`,
      `    issuer: ${JSON.stringify(token.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(token.rootCertPath)}`,
    ].join('\n');
  }

  // The port can be taken between freePort() and the registry's bind: try a few times.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const configPath = join(workDir, 'config.yml');
    await writeFile(configPath, registryConfig(port, dataDir, authBlock));
    const child = spawn(REGISTRY_BINARY, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitUntilUp(url, child, () => stderr);
    } catch (err) {
      lastError = err;
      child.kill('SIGKILL');
      continue;
    }
    track(child, workDir);
    const stop = async (): Promise<void> => {
      live.delete(child);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      await token?.stop();
      await rm(workDir, { recursive: true, force: true });
    };
    return {
      url,
      host: `127.0.0.1:${port}`,
      auth,
      ...(auth !== 'none' ? { username: TEST_USERNAME, password: TEST_PASSWORD } : {}),
      ...(token ? { token } : {}),
      dataDir,
      stop,
    };
  }
  await token?.stop();
  await rm(workDir, { recursive: true, force: true });
  throw new Error('could not start docker-registry', { cause: lastError });
}
