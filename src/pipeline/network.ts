import { setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Agent } from 'undici';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { redactUrl } from '../core/url.js';
import { newCrawlAgent } from '../crawler/agent.js';
import { HttpClient, type HttpEvent } from '../crawler/http.js';
import { hubCredentialsFromEnv, hubCredentialsFromStore, hubTakesDockerLogin } from '../crawler/hub/auth.js';
import { HubClient } from '../crawler/hub/client.js';
import { CredentialStore } from '../crawler/registry/credentials.js';
import { DOCKER_HUB } from '../crawler/registry/reference.js';
import { ListingCuts } from './listing-cuts.js';

/**
 * Registry credentials from the config, the environment and the Docker config file. The file is read
 * here, so a run calls this before it has a row: an unreadable file must not leave a phantom run.
 */
export function registryCredentials(config: Readonly<Config>, env: NodeJS.ProcessEnv): CredentialStore {
  const explicit: Record<string, { username: string; password: string }> = {};
  for (const [host, s] of Object.entries(config.registries)) {
    if (s.username && s.password) explicit[host] = { username: s.username, password: s.password };
  }
  return CredentialStore.fromSources({
    env,
    explicit,
    ...(config.dockerConfig !== undefined ? { dockerConfigPath: config.dockerConfig } : {}),
  });
}

export interface RunNetworkOptions {
  config: Readonly<Config>;
  env: NodeJS.ProcessEnv;
  /** The run's registry credentials: their docker.io entry also signs in to the Hub API (see below). */
  credentials: CredentialStore;
  log: Logger;
  /** Injected in tests (fault proxies, fast retries); a dispatcher given here is the caller's to close. */
  httpOptions?: ConstructorParameters<typeof HttpClient>[0];
}

/**
 * A run's HTTP side: one client for registries and one for the Docker Hub web API over it, the listing cuts
 * the Hub client reports, and the means to end every request at once when the run stops.
 */
export class RunNetwork {
  readonly http: HttpClient;
  readonly hub: HubClient;
  /**
   * Which item's listings were cut short: the Hub client notes them here, the registry clients through the
   * CrawlContext that run.ts hands them to, and process-item.ts fails that item.
   */
  readonly listingCuts = new ListingCuts();
  private readonly ownDispatcher: Agent | null;
  // Ends every request in flight (HttpClient's `signal`), and backoff and pause sleeps too, since a retry
  // would only meet the cut and delay the exit (test/e2e/interrupt.test.ts saw 5 futile attempts, ~10 s).
  private readonly cut = new AbortController();
  private rateLimitedUntil: number | null = null;

  constructor({ config, env, credentials, log, httpOptions }: RunNetworkOptions) {
    // Our own connection pool, closed with the run. Destroying it on a cut is not what ends the requests in
    // flight: undici's Agent forgets pools that still carry requests (see HttpClient.send), so every request
    // is sent with `cut` as its signal instead. Handlers other than the layer's pass no signal, and a SIGTERM
    // during a stalled manifest or config GET otherwise waited out the timeout (test/e2e/interrupt.test.ts,
    // test/integration/registry/run-network-cut.test.ts).
    this.ownDispatcher = httpOptions?.dispatcher ? null : newCrawlAgent();
    const cut = this.cut.signal;
    // Every request in flight (until its body ends) and every sleep without a signal of its own (waiting out
    // a host's 429 pause) listens to `cut`: one of the two per item at a time, so up to a whole run's
    // concurrency at once; each listener goes when its request or sleep ends.
    setMaxListeners(Math.max(64, Math.max(config.concurrency, config.layerConcurrency) * 8), cut);
    const sleep = (ms: number, signal?: AbortSignal) =>
      // Combined only when distinct: a layer download's own signal is `cut` (cutSignal; see eitherSignal in http.ts).
      delay(ms, undefined, { signal: signal && signal !== cut ? AbortSignal.any([signal, cut]) : cut });
    this.http = new HttpClient({
      ...(this.ownDispatcher ? { dispatcher: this.ownDispatcher, sleep } : {}),
      signal: cut,
      concurrencyPerHost: Math.max(config.concurrency, config.layerConcurrency),
      requestsPerSecondPerHost: config.http.requestsPerSecondPerHost,
      maxRetries: config.http.maxRetries,
      timeoutMs: config.http.timeoutMs,
      minBodyBytesPerSecond: config.http.minBodyBytesPerSecond,
      maxPauseMs: config.http.maxPauseMs,
      ...(config.maxPulls !== undefined ? { maxPulls: config.maxPulls } : {}),
      onEvent: (e: HttpEvent) => {
        if (e.type === 'rate-limited') {
          this.rateLimitedUntil = Date.now() + e.pauseMs;
          log.warn({ host: e.host, pauseMs: e.pauseMs, reason: e.reason }, 'rate limited; pausing the host');
        } else if (e.type === 'retry') {
          log.debug({ host: e.host, attempt: e.attempt, delayMs: e.delayMs, reason: e.reason }, 'retrying');
        }
      },
      ...httpOptions,
    });
    // HUBCRAWL_DOCKERHUB_* first; else what `docker login` left, asked only once the Hub API is used.
    const hubCredentials =
      hubCredentialsFromEnv(env) ??
      (() => {
        const fromStore = hubCredentialsFromStore(credentials, config.hubApiUrl);
        // Said once, when the Hub API is first used: otherwise the anonymous offset cap would come as a surprise.
        const skipped =
          fromStore === undefined &&
          hubTakesDockerLogin(config.hubApiUrl) &&
          credentials.get(DOCKER_HUB)?.kind === 'identity-token';
        if (skipped) {
          log.warn(
            {
              hubApi: redactUrl(config.hubApiUrl),
              signIn: 'HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN',
            },
            'docker.io login is an identity token, which the Docker Hub web API does not take: listing anonymously',
          );
        }
        return fromStore;
      });
    this.hub = new HubClient({
      http: this.http,
      baseUrl: config.hubApiUrl,
      credentials: hubCredentials,
      // Paging that stopped early or changed source is worth a warning: the listing may be incomplete.
      // A walk cut short also fails the item that listed (process-item.ts), so the run cannot end `completed`.
      onEvent: (e) => {
        this.listingCuts.note(e);
        if (['login', 'fallback'].includes(e.type)) log.debug({ hub: e }, 'docker hub api event');
        else log.warn({ hub: e }, 'docker hub api listing warning');
      },
    });
  }

  /** When the rate-limited host resumes, while one is paused; else null. */
  pausedUntil(): number | null {
    const until = this.rateLimitedUntil;
    return until !== null && until > Date.now() ? until : null;
  }

  /**
   * Aborted by cutOff. The run hands it to the work it may cut off (layer downloads and their analysis):
   * one signal for the requests and that work, so the client need not combine two on every request
   * (AbortSignal.any on Node 20 keeps an entry on its sources per call, for as long as the run lasts).
   */
  get cutSignal(): AbortSignal {
    return this.cut.signal;
  }

  /** Ends every in-flight request and every backoff or pause sleep now, for a run that is stopping. */
  cutOff(reason?: unknown): void {
    if (this.cut.signal.aborted) return;
    this.cut.abort(reason);
    // The requests end by their signal; this also closes the connections of every pool the Agent still knows.
    void this.ownDispatcher?.destroy().catch(() => {});
  }

  /** Closes the clients and the run's own pool (unless cutOff already destroyed it). */
  async close(): Promise<void> {
    await this.http.close();
    if (this.ownDispatcher && !this.ownDispatcher.destroyed) await this.ownDispatcher.close();
  }
}
