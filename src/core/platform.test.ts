import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { architectureNameProblem, parsePlatform, platformMatches, platformProblem } from './platform.js';

describe('parsePlatform', () => {
  it('parses os/arch[/variant]', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('linux/386')).toEqual({ os: 'linux', architecture: '386' });
  });

  it('refuses uname and dpkg architecture names, naming the one an image index uses', () => {
    const cases: Array<[string, string]> = [
      ['linux/x86_64', 'use linux/amd64'],
      ['linux/aarch64', 'use linux/arm64'],
      ['linux/i386', 'use linux/386'],
      ['linux/i686', 'use linux/386'],
      ['linux/armv7l', 'use linux/arm/v7'],
      ['linux/armhf', 'use linux/arm/v7'],
      ['linux/armel', 'use linux/arm/v6'],
      ['linux/ppc64el', 'use linux/ppc64le'],
      ['linux/x86_64/v3', 'use linux/amd64/v3'],
    ];
    for (const [typed, fix] of cases) {
      expect(() => parsePlatform(typed)).toThrow(ConfigError);
      expect(platformProblem(typed)).toMatch(new RegExp(`^platform "${typed}": .*GOARCH.*; ${fix}$`));
    }
    expect(platformProblem('linux/x86_64')).toBe(
      'platform "linux/x86_64": "x86_64" is not how an image index names the architecture (it uses Go\'s GOARCH names, here "amd64"); use linux/amd64',
    );
    expect(platformProblem('linux/armv7l')).toContain('"arm" variant "v7"');
  });

  it('leaves malformed strings to the form message', () => {
    expect(platformProblem('linux')).toMatch(/not of the form os\/arch/);
    expect(architectureNameProblem('linux')).toBeNull();
    expect(architectureNameProblem('linux/amd64')).toBeNull();
  });
});

describe('platformMatches', () => {
  const amd64 = { os: 'linux', architecture: 'amd64' };
  const arm64 = { os: 'linux', architecture: 'arm64' };
  const arm = { os: 'linux', architecture: 'arm' };
  it('reads an entry without a variant as a runtime does: amd64 v1, arm64 v8, arm v7 (containerd)', () => {
    expect(platformMatches(parsePlatform('linux/amd64/v1'), amd64)).toBe(true);
    expect(platformMatches(parsePlatform('linux/amd64/v1'), { ...amd64, variant: 'v1' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64/v8'), arm64)).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64/v8'), { ...arm64, variant: '8' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm/v7'), arm)).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm/v7'), { ...arm, variant: '7' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64/v9'), { ...arm64, variant: '9.0' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64/v9'), { ...arm64, variant: 'v9.0' })).toBe(true);
  });

  it('reads an entry labelled the uname or dpkg way as its GOARCH architecture, as containerd does', () => {
    // An index is the publisher's text: a backdoored amd64 entry labelled x86_64 is still pulled by Docker.
    expect(platformMatches(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'x86_64' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'aarch64' })).toBe(
      true,
    );
    expect(platformMatches(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'armhf' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'armel' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'x86_64' })).toBe(
      false,
    );
  });

  it('does not loosen the other cases', () => {
    expect(platformMatches(parsePlatform('linux/amd64/v2'), amd64)).toBe(false);
    expect(platformMatches(parsePlatform('linux/amd64/v1'), { ...amd64, variant: 'v2' })).toBe(false);
    expect(platformMatches(parsePlatform('linux/arm/v1'), arm)).toBe(false);
    expect(platformMatches(parsePlatform('linux/arm/v6'), arm)).toBe(false);
    expect(platformMatches(parsePlatform('linux/arm64/v9'), arm64)).toBe(false);
    expect(platformMatches(parsePlatform('linux/amd64/v1'), { os: 'windows', architecture: 'amd64' })).toBe(
      false,
    );
    expect(platformMatches(parsePlatform('linux/amd64'), { ...amd64, variant: 'v3' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm64'), { ...arm64, variant: 'v9' })).toBe(true);
  });
});
