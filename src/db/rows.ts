import type { Evidence } from '../analyzer/facts.js';

/**
 * Types shared by the stores and their callers. db/ may only `import type` from analyzer/, so the
 * image-level evidence and IOC set shapes are declared here structurally: the analyzer's own types
 * (src/analyzer/iocs/*) are assignable to them.
 */

/** Evidence placed in an image: which layer (0 = base) and whether the file survives in the final filesystem. */
export type ImageEvidence = Evidence & { layerIndex: number; inFinalFs: boolean };

/** One rule of an IOC set as the store needs it; the whole object is kept as JSON. */
export interface IocRuleInput {
  readonly id: string;
  readonly kind: string;
}

/** An IOC set as the store needs it; the whole object is kept as JSON. */
export interface IocSetInput {
  readonly id: string;
  readonly version: string;
  readonly title?: string | null | undefined;
  readonly rules: readonly IocRuleInput[];
}

/** An IOC set id and version, as recorded with a run. */
export interface IocSetRef {
  readonly id: string;
  readonly version: string;
}

/** The current time as stored in the dataset (ISO 8601 UTC). */
export function nowIso(): string {
  return new Date().toISOString();
}

/** SQLite stores booleans as 0/1. */
export function toInt(b: boolean | null | undefined): number | null {
  if (b === null || b === undefined) return null;
  return b ? 1 : 0;
}

/** 0/1/NULL back to a boolean (or null). */
export function toBool(n: number | null | undefined): boolean | null {
  if (n === null || n === undefined) return null;
  return n !== 0;
}
