/**
 * Query parameters that carry credentials: tokens, and the signatures of pre-signed blob URLs (Docker
 * Hub's CDN `verify=<expiry>-<sig>`, S3's `X-Amz-Signature`, GCS's `Signature`).
 */
const SECRET_PARAM = /token|secret|password|passwd|signature|^sig$|verify|credential|^key$|x-amz-|^auth/i;

/** A URL fit for messages, logs and the dataset: no userinfo, credential-like query values blanked. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(String(url));
    for (const key of [...u.searchParams.keys()]) {
      if (SECRET_PARAM.test(key)) u.searchParams.set(key, '[redacted]');
    }
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return String(url).slice(0, 200);
  }
}
