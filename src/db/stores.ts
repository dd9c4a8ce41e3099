import type { Database } from 'better-sqlite3';
import { FindingStore } from './finding-store.js';
import { ImageStore } from './image-store.js';
import { IocStore } from './ioc-store.js';
import { LayerStore } from './layer-store.js';
import { ManifestStore } from './manifest-store.js';
import { RepositoryStore } from './repository-store.js';
import { RunStore } from './run-store.js';
import { SelectionStore } from './selection-store.js';
import { TagStore } from './tag-store.js';

/** Every store of one database, prepared once (create one set per connection and keep it). */
export interface Stores {
  runs: RunStore;
  repositories: RepositoryStore;
  tags: TagStore;
  manifests: ManifestStore;
  images: ImageStore;
  layers: LayerStore;
  iocs: IocStore;
  findings: FindingStore;
  selections: SelectionStore;
}

/** Prepares every store's statements on `db`. */
export function createStores(db: Database): Stores {
  return {
    runs: new RunStore(db),
    repositories: new RepositoryStore(db),
    tags: new TagStore(db),
    manifests: new ManifestStore(db),
    images: new ImageStore(db),
    layers: new LayerStore(db),
    iocs: new IocStore(db),
    findings: new FindingStore(db),
    selections: new SelectionStore(db),
  };
}
