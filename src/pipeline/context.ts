import type { Database } from 'better-sqlite3';
import type { CompiledRules } from '../analyzer/iocs/compile.js';
import type { IocSet } from '../analyzer/iocs/schema.js';
import { ANALYZER_VERSION } from '../analyzer/layer-stream.js';
import { isDebianDerived } from '../analyzer/os-release.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import { type Platform, parsePlatform } from '../core/platform.js';
import type { HttpClient } from '../crawler/http.js';
import type { HubClient } from '../crawler/hub/client.js';
import { RegistryClient } from '../crawler/registry/client.js';
import type { CredentialStore } from '../crawler/registry/credentials.js';
import { DOCKER_HUB } from '../crawler/registry/reference.js';
import { Frontier } from '../db/frontier.js';
import { ImageStore } from '../db/image-store.js';
import { LayerStore } from '../db/layer-store.js';
import { ManifestStore } from '../db/manifest-store.js';
import { RepositoryStore } from '../db/repository-store.js';
import { TagStore } from '../db/tag-store.js';
import { CrawlCounters } from './counters.js';
import { runKeyPrefix } from './keys.js';
import type { ListingCut, ListingCuts } from './listing-cuts.js';
import { RunMatcher } from './run-matcher.js';

/** Everything a handler needs: the run's config, its stores, and its network clients. */
export class CrawlContext {
  readonly frontier: Frontier;
  readonly repositories: RepositoryStore;
  readonly tags: TagStore;
  readonly manifests: ManifestStore;
  readonly images: ImageStore;
  readonly layers: LayerStore;
  readonly platforms: Platform[] | 'all';
  readonly counters = new CrawlCounters();
  /** Matches the images an item completes, in the item's transaction. */
  readonly matcher: RunMatcher;
  /**
   * Writes the run's counts to the dataset (set by run.ts): after each item's outcome, and where a count is
   * committed on its own (a paid manifest GET), so a kill loses only what was in flight.
   */
  recordStats: () => void = () => {};
  private readonly clients = new Map<string, RegistryClient>();

  constructor(
    readonly db: Database,
    readonly config: Readonly<Config>,
    readonly runId: number,
    readonly http: HttpClient,
    readonly hub: HubClient,
    readonly credentials: CredentialStore,
    readonly iocSets: IocSet[],
    readonly rules: CompiledRules,
    readonly log: Logger,
    /** The run's listing cuts, which the registry clients report to as the Hub client does (network.ts). */
    private readonly listingCuts: ListingCuts,
    /** Whether the run was resumed: its earlier invocations may have reached layers this one reaches. */
    private readonly resumed = false,
  ) {
    this.frontier = new Frontier(db, { runId });
    this.repositories = new RepositoryStore(db);
    this.tags = new TagStore(db);
    this.manifests = new ManifestStore(db);
    this.images = new ImageStore(db);
    this.layers = new LayerStore(db);
    this.platforms =
      config.filters.platforms.length > 0 ? config.filters.platforms.map(parsePlatform) : 'all';
    this.matcher = new RunMatcher(db, iocSets, runId, this.counters);
  }

  /**
   * What an item's transaction changes in memory (the counts, the matcher's tally); the function returned
   * puts it back, for a transaction that rolled back: a resumed run doing the item again must not count it twice.
   */
  checkpoint(): () => void {
    const counts = this.counters.snapshot();
    const removed = this.matcher.removedOfUnloadedSets();
    // The layers countKnownLayers marks reached go with the counts: a rolled-back manifest write is done
    // again, and must count its known layers then. Checkpoint, write and undo run synchronously (one
    // transaction), so no other item adds to the list in between.
    const reached: string[] = [];
    this.reachedSinceCheckpoint = reached;
    return () => {
      this.counters.restore(counts);
      this.matcher.restoreRemoved(removed);
      for (const d of reached) this.layersReached.delete(d);
    };
  }

  private readonly layersReached = new Set<string>();
  private reachedSinceCheckpoint: string[] = [];

  /**
   * Counts in `layersReused` the layers of a recorded image that were already analyzed when the run reached
   * them (no download), each once per run: a layer the run reached before, with another image, was counted
   * then, or was analyzed by this run (`layersAnalyzed`). In the manifest item's write, with its rows.
   */
  countKnownLayers(image: string, layers: ReadonlyArray<{ digest: string }>): void {
    for (const { digest } of layers) {
      if (!this.reach(digest)) continue;
      if (this.layers.needsAnalysis(digest, ANALYZER_VERSION, this.rules.coveredBy)) continue;
      // A resumed run's earlier invocations reached it if one of their images lists it (its item is done).
      if (this.resumed && this.images.layerReachedInRun(digest, runKeyPrefix(this.runId), image)) continue;
      this.counters.layersReused += 1;
    }
  }

  /**
   * A layer this run analyzed, in its item's write: counted in `layersAnalyzed`, so its images reaching it
   * later must not count it again as reused. A layer item can come before them: one an earlier run left
   * pending (an older analyzer version's, after an upgrade) is claimed before this run's manifests reach it.
   */
  layerAnalyzed(digest: string): void {
    this.reach(digest);
  }

  /** Marks `digest` reached in this run; false when it was already. Undone with its transaction (checkpoint). */
  private reach(digest: string): boolean {
    if (this.layersReached.has(digest)) return false;
    this.layersReached.add(digest);
    this.reachedSinceCheckpoint.push(digest);
    return true;
  }

  private readonly debianBase = new Map<string, boolean>();

  /** Whether an analyzed base layer is Debian-derived (os-release ID/ID_LIKE, debian_version or dpkg). */
  baseIsDebian(layerDigest: string): boolean {
    let known = this.debianBase.get(layerDigest);
    if (known === undefined) {
      const facts = this.layers.loadFacts(layerDigest);
      known = facts ? isDebianDerived(facts.osRelease, facts.packages) : false;
      this.debianBase.set(layerDigest, known);
    }
    return known;
  }

  /** Remembers a freshly analyzed base layer's verdict. */
  debianBaseKnown(layerDigest: string, isDebian: boolean): void {
    this.debianBase.set(layerDigest, isDebian);
  }

  private readonly seen = new Set<string>();

  /** True the first time this run asks about `key`: for what is said once per run (a warning per registry). */
  firstTime(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }

  /** One client per registry host, with the configured endpoint (a mirror, a proxy) and scheme. */
  registry(host: string): RegistryClient {
    let client = this.clients.get(host);
    if (!client) {
      const settings = this.config.registries[host];
      const endpoint = settings?.endpoint ?? (host === DOCKER_HUB ? this.config.registryMirror : undefined);
      client = new RegistryClient({
        registry: host,
        http: this.http,
        credentials: this.credentials,
        maxManifestBytes: this.config.limits.maxManifestBytes,
        maxListingEntries: this.config.limits.maxListingEntries,
        // A tags/list or _catalog walk cut short keeps what it listed, and its item fails (listing-cuts.ts).
        onEvent: (e) => {
          this.log.warn({ registry: host, cut: e }, 'registry listing cut short');
          this.listingCuts.note(e);
        },
        ...(settings?.scheme ? { scheme: settings.scheme } : {}),
        ...(endpoint ? { endpoint } : {}),
      });
      this.clients.set(host, client);
    }
    return client;
  }

  /** The cuts the running item's listings met so far: a listing cut short (listing-cuts.ts). */
  listingCutsSoFar(): readonly ListingCut[] {
    return this.listingCuts.soFar();
  }
}
