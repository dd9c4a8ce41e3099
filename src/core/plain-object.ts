/** Whether `v` is an object of keys and values, as JSON.parse gives for `{…}`: not null, not an array. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
