import { describe, expect, it } from 'vitest';
import { HttpClient } from '../http.js';
import { HubClient, type HubEvent } from './client.js';

describe('HubClient events', () => {
  it('hand listeners redacted URLs: no userinfo, no token, in URLs and in messages', async () => {
    const heard: HubEvent[] = [];
    const http = new HttpClient();
    const client = new HubClient({
      http,
      baseUrl: 'https://hub.example',
      onEvent: (e) => heard.push(e),
    });
    client.emit({ type: 'page-cap', url: 'https://bob:pw@hub.example/api/search/v4?query=x', maxPages: 1 });
    client.emit({ type: 'bad-next', url: 'https://hub.example/v2/x', next: 'http://bob:pw@[bad?token=t0p' });
    client.emit({
      type: 'tags-fallback',
      url: 'https://bob:pw@hub.example/v2/x/tags?page=11',
      offset: 1000,
      message: 'offset cap at https://bob:pw@hub.example/v2/x/tags?page=11&token=t0p; sign in',
    });
    expect(heard.map((e) => e.type)).toEqual(['page-cap', 'bad-next', 'tags-fallback']);
    expect(JSON.stringify(heard)).not.toMatch(/bob|pw@|t0p/);
    expect(heard[0]).toMatchObject({ url: 'https://hub.example/api/search/v4?query=x' });
    await http.close();
  });
});
