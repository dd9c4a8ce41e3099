/**
 * Repository names: the one grammar and the one split. A repository path (no registry, tag or digest) is
 * one or more `/`-separated components of the distribution/reference grammar (regexp.go). Registries allow
 * any depth (`org/team/tool` on ghcr.io); Docker Hub names have exactly two (`library/debian`).
 */
import { CorruptInputError } from './errors.js';

// distribution/reference `path-component`: lowercase alphanumerics joined by single separators.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/**
 * distribution/reference `NameTotalLengthMax` (255). The reference parser (crawler/registry/reference.ts)
 * applies it to registry + path, as docker does; `isValidRepositoryPath` applies it to the path alone, as a
 * registry server does for the names it lists. So a 250-character path listed by a catalog is crawled,
 * while the same path written as a seed with its registry in front can be refused.
 */
export const MAX_NAME_LENGTH = 255;

/** A repository path split the way the dataset stores it (`repositories.namespace`, `repositories.name`). */
export interface RepositoryName {
  /** Everything before the last `/` (`org/team` for `org/team/tool`); `''` for a one-component path. */
  namespace: string;
  /** The last path component. */
  name: string;
}

/** Whether `c` is one path component of the reference grammar (`debian`, `app_x.y-z`). */
export function isValidPathComponent(c: string): boolean {
  return COMPONENT.test(c);
}

/**
 * Whether a repository path (no registry) is valid. Registries and the Hub list names we then put into
 * URLs: a `..`, `?` or `#` would steer our authenticated requests elsewhere on the origin.
 */
export function isValidRepositoryPath(path: string): boolean {
  return path.length > 0 && path.length <= MAX_NAME_LENGTH && path.split('/').every(isValidPathComponent);
}

/**
 * Splits a repository path at its last `/`: `library/debian` → (`library`, `debian`), `org/team/tool` →
 * (`org/team`, `tool`), `plain` → (`''`, `plain`). A one-component path is first put under
 * `defaultNamespace` when one is given (Docker Hub: `debian` with `library` → (`library`, `debian`)).
 * A path the reference grammar refuses (empty, a leading, trailing or doubled `/`, upper case, `..`)
 * throws CorruptInputError.
 */
export function splitRepositoryName(path: string, defaultNamespace = ''): RepositoryName {
  const full = defaultNamespace !== '' && !path.includes('/') ? `${defaultNamespace}/${path}` : path;
  if (!isValidRepositoryPath(full)) {
    throw new CorruptInputError(
      `repository name "${full.slice(0, 300)}" is invalid: it must be 1–${MAX_NAME_LENGTH} characters of ` +
        '/-separated lowercase letters, digits and single separators (. _ __ -)',
    );
  }
  const i = full.lastIndexOf('/');
  return i < 0 ? { namespace: '', name: full } : { namespace: full.slice(0, i), name: full.slice(i + 1) };
}
