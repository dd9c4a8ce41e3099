/**
 * Docker credential helpers (`credsStore` and `credHelpers` in ~/.docker/config.json): the
 * `docker-credential-<name>` programs that keep registry passwords in a keychain instead of the
 * file. Protocol (github.com/docker/docker-credential-helpers): `get` reads the server URL on
 * stdin and prints `{"ServerURL","Username","Secret"}`; a credential it does not hold is an exit
 * status of 1 with "credentials not found" on stdout.
 *
 * A helper runs synchronously, once per registry (the store caches the answer): a keychain answers
 * in milliseconds, and keeping lookups synchronous spares every caller of CredentialStore.get an
 * await for the rare case of a helper.
 */
import { execFileSync } from 'node:child_process';
import { z } from 'zod';
import { ConfigError, FatalError } from '../../core/errors.js';
import { findOnPath } from '../../core/find-on-path.js';
import { DOCKER_HUB } from './reference.js';

/** A helper has this long to answer (a keychain prompt included) before the crawl gives up on it. */
export const HELPER_TIMEOUT_MS = 30_000;
/** An answer is a few hundred bytes; anything past this is not a credential. */
const HELPER_MAX_OUTPUT = 64 * 1024;

/** Helper names are file-name suffixes: no path separators, so a config cannot run an arbitrary program. */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The identity-token marker: the Secret is an OAuth refresh token, not a password. */
const IDENTITY_TOKEN_USERNAME = '<token>';

const answerSchema = z.object({ Username: z.string(), Secret: z.string() });

export interface HelperAnswer {
  username: string;
  secret: string;
}

/** How to run helpers: the environment they see (and whose PATH finds them) and the config they came from. */
export interface HelperContext {
  env: NodeJS.ProcessEnv;
  /** The Docker config file naming the helper, for error messages. */
  configPath: string;
  /** How long a helper may take to answer (default HELPER_TIMEOUT_MS). */
  timeoutMs?: number | undefined;
}

const howToSkip = (configPath: string) =>
  `or crawl without ${configPath} (config \`dockerConfig: null\`, or --docker-config naming another file)`;

/** Throws ConfigError unless `name` is a valid helper name found on PATH as docker-credential-<name>. */
export function assertHelperInstalled(name: string, ctx: HelperContext, field: string): void {
  if (!HELPER_NAME.test(name)) {
    throw new ConfigError(`${ctx.configPath}: ${field} "${name}" is not a credential helper name`);
  }
  if (helperPath(name, ctx.env) === null) {
    throw new ConfigError(
      `${ctx.configPath}: ${field} names the credential helper "${name}", but docker-credential-${name} is not on PATH; install it, ${howToSkip(ctx.configPath)}`,
    );
  }
}

function helperPath(name: string, env: NodeJS.ProcessEnv): string | null {
  return findOnPath(`docker-credential-${name}`, env.PATH ?? '');
}

/** The server URL a helper files a registry under: Docker Hub keeps the v1 index URL of old. */
export function helperServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

/**
 * Asks helper `name` for the credential of `registry`: null when it holds none. A helper that
 * cannot run, times out, answers something else than a credential, or hands out an identity token
 * (which only Docker's own login flow can use) stops the run with FatalError: continuing
 * anonymously would quietly spend the anonymous pull quota of a user who set up a login.
 */
export function helperGet(name: string, registry: string, ctx: HelperContext): HelperAnswer | null {
  const path = helperPath(name, ctx.env);
  const who = `the credential helper docker-credential-${name} (for ${registry})`;
  if (path === null) {
    throw new FatalError(`${who} is no longer on PATH; install it, ${howToSkip(ctx.configPath)}`);
  }
  const timeout = ctx.timeoutMs ?? HELPER_TIMEOUT_MS;
  let stdout: string;
  try {
    stdout = execFileSync(path, ['get'], {
      input: helperServerUrl(registry),
      env: ctx.env,
      encoding: 'utf8',
      timeout,
      maxBuffer: HELPER_MAX_OUTPUT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    const e = err as { status?: number | null; stdout?: string; stderr?: string; code?: string };
    const said = `${e.stdout ?? ''} ${e.stderr ?? ''}`.trim();
    if (e.status === 1 && /credentials not found/i.test(said)) return null;
    const why =
      e.code === 'ETIMEDOUT' || e.status === null
        ? `did not answer within ${timeout / 1000} s`
        : `failed (exit status ${e.status ?? e.code}: ${oneLine(said)})`;
    throw new FatalError(`${who} ${why}; fix it, ${howToSkip(ctx.configPath)}`, { cause: err });
  }
  let answer: z.infer<typeof answerSchema>;
  try {
    answer = answerSchema.parse(JSON.parse(stdout));
  } catch {
    // The output may hold a secret in a shape we do not know, and JSON.parse quotes what it could
    // not parse: neither the output nor the parse error goes into the message or its cause.
    throw new FatalError(`${who} printed something other than a credential; ${howToSkip(ctx.configPath)}`);
  }
  if (answer.Username === IDENTITY_TOKEN_USERNAME) {
    throw new FatalError(
      `${who} holds an identity token, which hubcrawl cannot use; give a username and password or access token instead (docker login -u, HUBCRAWL_* variables or registries.<host> in the config), ${howToSkip(ctx.configPath)}`,
    );
  }
  if (answer.Username === '' || answer.Secret === '') return null;
  return { username: answer.Username, secret: answer.Secret };
}

/** The first line of a helper's message, bounded: helpers are not ours and may be chatty. */
function oneLine(text: string): string {
  const first = text.split('\n')[0] ?? '';
  return first.length > 200 ? `${first.slice(0, 200)}…` : first || 'no message';
}
