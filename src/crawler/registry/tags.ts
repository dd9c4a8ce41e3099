/**
 * `GET /v2/<name>/tags/list` with `n`/`last` and `Link: <…>; rel="next"` paging (distribution-spec
 * "Listing Tags"); the pager, shared with `_catalog`, is paging.ts.
 */
import { z } from 'zod';
import { CorruptInputError } from '../../core/errors.js';
import { pullScope } from './auth.js';
import { type PageOptions, paginate } from './paging.js';
import type { RegistryTransport } from './transport.js';

const tagsSchema = z.object({ name: z.string().optional(), tags: z.array(z.string()).nullable().optional() });

/** Every tag of a repository, in the registry's (lexical) order. */
export function listTags(
  t: RegistryTransport,
  repository: string,
  opts: PageOptions = {},
): AsyncGenerator<string> {
  const url = new URL(`/v2/${repository}/tags/list`, t.baseUrl);
  if (opts.pageSize !== undefined) url.searchParams.set('n', String(opts.pageSize));
  return paginate(
    t,
    url,
    pullScope(repository),
    (body, at) => {
      const r = tagsSchema.safeParse(body);
      if (!r.success)
        throw new CorruptInputError(`${at.href} is not a tags/list answer: ${r.error.issues[0]?.message}`);
      return r.data.tags ?? [];
    },
    opts,
  );
}
