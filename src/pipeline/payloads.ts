/** Payloads of the frontier items the pipeline enqueues (stored as JSON in the frontier table). */

export interface NamespacePayload {
  namespace: string;
}

export interface SearchPayload {
  query: string;
}

export interface CatalogPayload {
  /** The registry base URL as the user gave it. */
  url: string;
  /** `host[:port]` as recorded in the dataset. */
  registry: string;
}

export interface RepositoryPayload {
  registry: string;
  repository: string;
  /**
   * The Docker Hub namespace listing that found it stored its Hub metadata (the same fields the
   * per-repository endpoint gives): no call of its own, where the Hub API allows about 180 a minute.
   */
  metadataListed?: boolean;
  /**
   * A registry's `_catalog` listed it: the registry holds it, so a tags/list answering NAME_UNKNOWN means
   * no tags (distribution answers so for a repository holding only untagged manifests), not no repository.
   */
  catalogListed?: boolean;
}

/** A tag or a digest of a repository, to resolve to a manifest digest. */
export interface ReferencePayload {
  registry: string;
  repository: string;
  /** null for an untagged digest. */
  tag: string | null;
  /** Known digest (a digest seed, or the Hub API's listing); null → HEAD the tag (not a counted pull). */
  digest: string | null;
  pushedAt: string | null;
  /**
   * The type of what the tag points at, as the Docker Hub tag listing gave it (absent elsewhere): a
   * schema1 type refuses the reference before any HEAD or GET.
   */
  mediaType?: string | null;
  /** Seeds are crawled even when filters would drop them. */
  seed?: boolean;
}

/** A manifest to fetch (or read back from the dataset) by digest. */
export interface ManifestPayload {
  registry: string;
  repository: string;
  digest: string;
  /** Set for the platform images of an index. */
  platform: { os: string; architecture: string; variant?: string } | null;
  /** How many indexes lead here from the tag (absent: 0); bounded by MAX_INDEX_DEPTH. */
  depth?: number;
  /** The type the index listing it declares (absent for a tag's own manifest): schema1 costs no GET. */
  mediaType?: string;
}

/** A layer blob to analyze. */
export interface LayerPayload {
  registry: string;
  repository: string;
  digest: string;
  mediaType: string | null;
  size: number | null;
  /** A base layer analyzed first with `debianOnly`: decides whether the upper layers are analyzed. */
  gate: boolean;
}
