/** `GET /v2/_catalog` with the same paging as tags/list. Docker Hub disables it (401 insufficient_scope). */
import { z } from 'zod';
import { CorruptInputError } from '../../core/errors.js';
import { CATALOG_SCOPE } from './auth.js';
import { type PageOptions, paginate } from './paging.js';
import type { RegistryTransport } from './transport.js';

const catalogSchema = z.object({ repositories: z.array(z.string()).nullable().optional() });

/** Every repository name the registry lists. */
export function catalog(t: RegistryTransport, opts: PageOptions = {}): AsyncGenerator<string> {
  const url = new URL('/v2/_catalog', t.baseUrl);
  if (opts.pageSize !== undefined) url.searchParams.set('n', String(opts.pageSize));
  return paginate(
    t,
    url,
    CATALOG_SCOPE,
    (body, at) => {
      const r = catalogSchema.safeParse(body);
      if (!r.success)
        throw new CorruptInputError(`${at.href} is not a _catalog answer: ${r.error.issues[0]?.message}`);
      return r.data.repositories ?? [];
    },
    opts,
  );
}
