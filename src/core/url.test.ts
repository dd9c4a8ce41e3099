import { describe, expect, it } from 'vitest';
import { redactUrl, redactUrlsIn } from './url.js';

describe('redactUrl', () => {
  it("blanks the signature of Docker Hub's pre-signed CDN blob URLs", () => {
    const cdn =
      'https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/71/7193/data?verify=1685896700-P3OxAK20OWkR0Im6UBQH1U9Bi1c%3D';
    expect(redactUrl(cdn)).toBe(
      'https://production.cloudflare.docker.com/registry-v2/docker/registry/v2/blobs/sha256/71/7193/data?verify=%5Bredacted%5D',
    );
  });

  it('blanks tokens, S3 signatures and userinfo but keeps paging parameters', () => {
    expect(
      redactUrl('https://u:p@h.example/v2/x?page=2&page_size=100&access_token=abc&X-Amz-Signature=f00'),
    ).toBe(
      'https://h.example/v2/x?page=2&page_size=100&access_token=%5Bredacted%5D&X-Amz-Signature=%5Bredacted%5D',
    );
  });

  it('scrubs userinfo and secret values from text that does not parse as a URL (a malformed link)', () => {
    expect(redactUrl('http://u:p@[bad/v2/x?n=5&token=abc')).toBe('http://[bad/v2/x?n=5&token=[redacted]');
  });
});

describe('redactUrlsIn', () => {
  it('redacts each URL inside a message and leaves the words', () => {
    expect(redactUrlsIn('offset cap at https://bob:pw@hub.example/v2/x?page=11&token=t; sign in')).toBe(
      'offset cap at https://hub.example/v2/x?page=11&token=%5Bredacted%5D; sign in',
    );
  });
});
