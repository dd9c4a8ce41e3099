/**
 * The demo image set in a registry of the suite's own (its `_catalog` must hold nothing else), and
 * the report rows a crawl of it must produce, written out one by one.
 */
import { buildDemoImages, type DemoImage } from '../../../scripts/demo-images.js';
import type { BuiltImage, BuiltIndex } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import { builtinSetLabel } from '../../helpers/crawl-fixtures.js';

export { builtinSetLabel };

export const REPORT_HEADER =
  'registry,repository,tag,platform,manifest_digest,index_digest,ioc_set,rule_id,evidence_kind,path,evidence,layer_digest,in_final_fs,last_pushed,pull_count,first_seen,last_seen,tag_current';

export const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

export interface DemoRegistry {
  registry: RunningRegistry;
  images: Map<string, DemoImage>;
}

/** Starts a private anonymous registry and pushes the demo set into it. */
export async function startDemoRegistry(): Promise<DemoRegistry> {
  const registry = await startRegistry({ auth: 'none', installIfMissing: true });
  const images = new Map<string, DemoImage>();
  try {
    for (const d of await buildDemoImages()) {
      await pushImage(registry, d.repository, d.tag, d.image);
      images.set(d.repository, d);
    }
  } catch (err) {
    await registry.stop();
    throw err;
  }
  return { registry, images };
}

function asImage(d: DemoImage | undefined): BuiltImage {
  if (d?.image.kind !== 'image') throw new Error('expected a single-platform demo image');
  return d.image;
}

function asIndex(d: DemoImage | undefined): BuiltIndex {
  if (d?.image.kind !== 'index') throw new Error('expected a demo index');
  return d.image;
}

/** Report columns without the four run-dependent ones (last_pushed, pull_count, first_seen, last_seen). */
export type StableRow = Record<
  | 'registry'
  | 'repository'
  | 'tag'
  | 'platform'
  | 'manifest_digest'
  | 'index_digest'
  | 'ioc_set'
  | 'rule_id'
  | 'evidence_kind'
  | 'path'
  | 'evidence'
  | 'layer_digest'
  | 'in_final_fs',
  string
>;

/** The twelve rows of the demo report (the README's demo promises exactly these verdicts); `host` when crawled through a proxy. */
export function expectedDemoRows(demo: DemoRegistry, host = demo.registry.host): StableRow[] {
  const set = builtinSetLabel();
  const sidXz = asImage(demo.images.get('demo/sid-xz'));
  const sigLib = asImage(demo.images.get('demo/sig-lib'));
  const removed = asImage(demo.images.get('demo/removed'));
  const multi = asIndex(demo.images.get('demo/multi'));
  const [multiAmd, multiArm] = multi.children as [BuiltImage, BuiltImage];
  const sidLayer = sidXz.layers[0]!.digest;
  const armLayer = multiArm.layers[0]!.digest;
  const sigLayer = sigLib.layers[1]!.digest;
  const lib = '/usr/lib/x86_64-linux-gnu';
  /** One expected row: `where` names the image and layer, the rest the finding. */
  const row = (
    where: Pick<
      StableRow,
      'repository' | 'tag' | 'platform' | 'manifest_digest' | 'index_digest' | 'layer_digest'
    >,
    rule: string,
    kind: string,
    path: string,
    evidence: string,
    inFinal = true,
  ): StableRow => ({
    registry: host,
    ...where,
    ioc_set: set,
    rule_id: rule,
    evidence_kind: kind,
    path,
    evidence,
    in_final_fs: String(inFinal),
  });
  const dpkgStatus = '/var/lib/dpkg/status';
  // The dpkg evidence of the sid base with liblzma5 5.6.1-1 (amd64: also the payload rule and the md5sums line).
  const sidAmd64 = (repository: string, tag: string, manifest: string, index: string) => {
    const where = {
      repository,
      tag,
      platform: 'linux/amd64',
      manifest_digest: manifest,
      index_digest: index,
      layer_digest: sidLayer,
    };
    return [
      row(where, 'dpkg-liblzma5-affected', 'dpkg-version', dpkgStatus, 'liblzma5=5.6.1-1'),
      row(where, 'dpkg-liblzma5-payload-expected', 'dpkg-version', dpkgStatus, 'liblzma5=5.6.1-1'),
      row(where, 'dpkg-xz-utils-affected', 'dpkg-version', dpkgStatus, 'xz-utils=5.6.1-1'),
      row(
        where,
        'liblzma-so-5.6.1-debian-amd64-md5',
        'dpkg-md5sums',
        `${lib}/liblzma.so.5.6.1`,
        '53d82bb511b71a5d4794cf2d8a2072c1',
      ),
    ];
  };
  const multiArm64 = {
    repository: 'demo/multi',
    tag: 'latest',
    platform: 'linux/arm64/v8',
    manifest_digest: multiArm.digest,
    index_digest: multi.digest,
    layer_digest: armLayer,
  };
  /** The liblzma 5.6.0 byte signature in sig-lib's layer 2 (`repository`'s only image). */
  const signature = (repository: string, manifest: string, inFinal: boolean) =>
    row(
      {
        repository,
        tag: 'latest',
        platform: 'linux/amd64',
        manifest_digest: manifest,
        index_digest: '',
        layer_digest: sigLayer,
      },
      'sig-detect-sh-prologue',
      'byte-signature',
      `${lib}/liblzma.so.5.6.0`,
      'offset=4008',
      inFinal,
    );
  return [
    ...sidAmd64('demo/multi', 'latest', multiAmd.digest, multi.digest),
    row(multiArm64, 'dpkg-liblzma5-affected', 'dpkg-version', dpkgStatus, 'liblzma5=5.6.1-1'),
    row(multiArm64, 'dpkg-xz-utils-affected', 'dpkg-version', dpkgStatus, 'xz-utils=5.6.1-1'),
    // The signature-bearing file sits in layer 2; layer 3 whites it out.
    signature('demo/removed', removed.digest, false),
    ...sidAmd64('demo/sid-xz', '20240311', sidXz.digest, ''),
    signature('demo/sig-lib', sigLib.digest, true),
  ];
}

/** Drops the run-dependent columns and sorts, so two row lists compare as sets. */
export function stable(rows: Array<Record<string, string>>): StableRow[] {
  const keys = Object.keys(expectedKeysTemplate) as Array<keyof StableRow>;
  return rows
    .map((r) => Object.fromEntries(keys.map((k) => [k, r[k] ?? ''])) as StableRow)
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

const expectedKeysTemplate: StableRow = {
  registry: '',
  repository: '',
  tag: '',
  platform: '',
  manifest_digest: '',
  index_digest: '',
  ioc_set: '',
  rule_id: '',
  evidence_kind: '',
  path: '',
  evidence: '',
  layer_digest: '',
  in_final_fs: '',
};

/** CSV records (header first) → objects keyed by the header. */
export function recordsToObjects(records: string[][]): Array<Record<string, string>> {
  const [header, ...rows] = records;
  if (!header) return [];
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}
