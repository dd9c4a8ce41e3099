/** The dataset layer: open + migrate, stores, frontier, crawl lock. Import from here or from the files. */
export { type FindingRow, FindingStore, type ReplaceFindingsOptions } from './finding-store.js';
export {
  type EnqueueOptions,
  type FailOptions,
  Frontier,
  type FrontierCount,
  type FrontierError,
  type FrontierItem,
  type FrontierKind,
  type FrontierOptions,
  type FrontierState,
  type NewFrontierItem,
} from './frontier.js';
export {
  type ImageInput,
  type ImageLayerRow,
  type ImageRow,
  ImageStore,
  type ImageToMatch,
  type LayerRef,
  type OsFacts,
} from './image-store.js';
export { type IocSetRow, IocStore } from './ioc-store.js';
export { type LayerRow, type LayerStatus, LayerStore } from './layer-store.js';
export { acquireCrawlLock, type CrawlLock } from './lock.js';
export {
  type IndexChild,
  type ManifestInput,
  type ManifestKind,
  type ManifestRow,
  ManifestStore,
} from './manifest-store.js';
export { DEFAULT_MIGRATIONS_DIR, loadMigrations, type Migration, migrate, schemaVersion } from './migrate.js';
export { type Database, type OpenOptions, openDatabase } from './open.js';
export { type LayerStack, type RematchOptions, type RematchResult, rematchAll } from './rematch.js';
export {
  DOCKER_HUB_REGISTRY,
  type HubMetadata,
  type RepositoryRow,
  RepositoryStore,
  splitRepositoryName,
} from './repository-store.js';
export type { ImageEvidence, IocRuleInput, IocSetInput, IocSetRef } from './rows.js';
export { type RunRow, type RunStartInput, type RunStatus, RunStore, redactSecrets } from './run-store.js';
export { mapSqliteError, READ_ONLY_MESSAGE } from './sqlite-errors.js';
export { createStores, type Stores } from './stores.js';
export { type TagObservation, type TagObservationRow, TagStore } from './tag-store.js';
