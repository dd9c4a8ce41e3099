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
    // Not a URL (a malformed link a server sent): still no `user:pass@` and no secret-looking value.
    return String(url)
      .slice(0, 200)
      .replace(/\/\/[^/?#\s]*@/g, '//')
      .replace(/([?&;]([^=&#\s]*)=)([^&#\s]*)/g, (all, head: string, key: string) =>
        SECRET_PARAM.test(key) ? `${head}[redacted]` : all,
      );
  }
}

/** `text` with every http(s) URL in it passed through redactUrl (an error message that quotes one, say). */
export function redactUrlsIn(text: string): string {
  // A URL ends before whitespace or quotes, and not on the punctuation of the sentence around it.
  return text.replace(/https?:\/\/[^\s"'<>]*[^\s"'<>.,;:!?)]/g, (u) => redactUrl(u));
}
