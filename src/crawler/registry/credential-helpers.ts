/**
 * Docker credential helpers (`credsStore` and `credHelpers` in ~/.docker/config.json): the
 * `docker-credential-<name>` programs that keep registry passwords in a keychain instead of the
 * file. Protocol (github.com/docker/docker-credential-helpers): `get` reads the server URL on
 * stdin and prints `{"ServerURL","Username","Secret"}`; a credential it does not hold is a
 * non-zero exit with exactly "credentials not found in native keychain" on stdout.
 *
 * A helper runs synchronously, once per registry (the store caches the answer, a failure
 * included): a keychain answers in milliseconds, and keeping lookups synchronous spares every
 * caller of CredentialStore.get an await for the rare case of a helper.
 */
import { execFileSync } from 'node:child_process';
import { z } from 'zod';
import { ConfigError, FatalError } from '../../core/errors.js';
import { findOnPath } from '../../core/find-on-path.js';
import { basicCredential, type Credential, identityTokenCredential } from './credential.js';
import { DOCKER_HUB } from './reference.js';

/** A helper has this long to answer (a keychain prompt included) before the crawl gives up on it. */
export const HELPER_TIMEOUT_MS = 30_000;
/** An answer is a few hundred bytes; anything past this is not a credential. */
const HELPER_MAX_OUTPUT = 64 * 1024;

/** Helper names are file-name suffixes: no path separators, so a config cannot run an arbitrary program. */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The identity-token marker: the Secret is an OAuth2 refresh token for the token service, not a password. */
const IDENTITY_TOKEN_USERNAME = '<token>';

const answerSchema = z.object({ Username: z.string(), Secret: z.string() });

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

/**
 * Throws ConfigError unless `name` can be a helper name. Whether it is installed is found out when
 * a registry needs it: a `credsStore` left behind by Docker Desktop must not stop a crawl whose
 * registries all have credentials from elsewhere.
 */
export function assertHelperName(name: string, ctx: HelperContext, field: string): void {
  if (!HELPER_NAME.test(name)) {
    throw new ConfigError(`${ctx.configPath}: ${field} "${name}" is not a credential helper name`);
  }
}

/** Variables that carry hubcrawl's own secrets: a helper for one registry has no business with another's password. */
const OWN_SECRETS = /^HUBCRAWL_.*(PASSWORD|TOKEN)$/;

/** The environment a helper runs in: the caller's, minus hubcrawl's own secrets. */
export function helperEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !OWN_SECRETS.test(k)));
}

function helperPath(name: string, env: NodeJS.ProcessEnv): string | null {
  return findOnPath(`docker-credential-${name}`, env.PATH ?? '');
}

/** The server URL a helper files a registry under: Docker Hub keeps the v1 index URL of old. */
export function helperServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

/** What a helper prints when it holds nothing for the server URL (docker-credential-helpers' ErrCredentialsNotFound). */
const NOT_FOUND = 'credentials not found in native keychain';

/**
 * Asks helper `name` for the credential of `registry`: null when it holds none, an identity token
 * when it answers with the `<token>` username. A helper that is missing, cannot run, times out or
 * answers something else than a credential stops the run with FatalError: continuing anonymously
 * would quietly spend the anonymous pull quota of a user who set up a login.
 *
 * Nothing a helper prints is quoted, on success or failure: stdout is where the secret is printed
 * (a wrapper script can print the credential and still exit non-zero), and stderr may name an account
 * or echo a passphrase in any words, which no filter can tell apart. The message says how to run the
 * helper by hand to read its own message instead.
 */
export function helperGet(name: string, registry: string, ctx: HelperContext): Credential | null {
  const path = helperPath(name, ctx.env);
  const who = `the credential helper docker-credential-${name} (for ${registry})`;
  if (path === null) {
    throw new FatalError(`${who} is not on PATH; install it, ${howToSkip(ctx.configPath)}`);
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
    const e = err as {
      status?: number | null;
      signal?: string | null;
      stdout?: string;
      stderr?: string;
      code?: string;
    };
    // Docker matches the whole of stdout, so a failure that merely mentions the words is still a failure.
    if (typeof e.status === 'number' && (e.stdout ?? '').trim() === NOT_FOUND) return null;
    // No cause: the error of execFileSync carries the helper's stdout and stderr.
    throw new FatalError(
      `${who} ${helperFailure(e, timeout)}; run \`echo ${helperServerUrl(registry)} | docker-credential-${name} get\` ` +
        `to see its message, and fix it, ${howToSkip(ctx.configPath)}`,
    );
  }
  let answer: z.infer<typeof answerSchema>;
  try {
    answer = answerSchema.parse(JSON.parse(stdout));
  } catch {
    // JSON.parse quotes what it could not parse: neither the output nor the parse error goes into the message.
    throw new FatalError(`${who} printed something other than a credential; ${howToSkip(ctx.configPath)}`);
  }
  if (answer.Username === '' || answer.Secret === '') return null;
  if (answer.Username === IDENTITY_TOKEN_USERNAME) return identityTokenCredential(answer.Secret, undefined);
  return basicCredential(answer.Username, answer.Secret);
}

/** Why a helper run failed, in words that quote nothing it printed. */
function helperFailure(
  e: { status?: number | null; signal?: string | null; code?: string },
  timeoutMs: number,
): string {
  if (e.code === 'ETIMEDOUT') return `did not answer within ${timeoutMs / 1000} s`;
  if (e.code === 'ENOBUFS') return `printed more than ${HELPER_MAX_OUTPUT} bytes`;
  if (e.signal) return `was killed by ${e.signal}`;
  if (typeof e.status !== 'number') return `could not run (${e.code ?? 'unknown error'})`;
  return `failed with exit status ${e.status} (its output is not quoted: it may hold a credential)`;
}
