/**
 * Debian version ordering (Debian Policy §5.6.12), a port of dpkg's `verrevcmp`: the epoch compares
 * numerically, then upstream and revision compare as alternating non-digit / digit runs where `~`
 * sorts before everything (even the end of the string) and letters sort before other characters.
 */

/** The three parts of a Debian version string. */
export interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/** Split `[epoch:]upstream[-revision]`; throws a TypeError on a string dpkg would reject outright. */
export function parseDebianVersion(v: string): DebianVersion {
  const s = v.trim();
  if (s === '') throw new TypeError('empty Debian version string');
  if (/\s/.test(s)) throw new TypeError(`Debian version "${v}" contains whitespace`);
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const e = s.slice(0, colon);
    if (!/^[0-9]+$/.test(e)) throw new TypeError(`Debian version "${v}" has a non-numeric epoch`);
    epoch = Number.parseInt(e, 10);
    rest = s.slice(colon + 1);
  }
  // The revision is everything after the LAST hyphen; upstream may itself contain hyphens.
  const hyphen = rest.lastIndexOf('-');
  const upstream = hyphen >= 0 ? rest.slice(0, hyphen) : rest;
  const revision = hyphen >= 0 ? rest.slice(hyphen + 1) : '';
  if (upstream === '') throw new TypeError(`Debian version "${v}" has an empty upstream part`);
  return { epoch, upstream, revision };
}

/** Whether `v` parses as a Debian version (upstream starts with a digit, as dpkg requires). */
export function isValidDebianVersion(v: string): boolean {
  try {
    const p = parseDebianVersion(v);
    return /^[0-9][A-Za-z0-9.+~:-]*$/.test(p.upstream) && /^[A-Za-z0-9.+~]*$/.test(p.revision);
  } catch {
    return false;
  }
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** dpkg's `order()`: digits and end-of-string weigh 0, `~` -1, letters their code, the rest code + 256. */
function order(c: number): number {
  if (Number.isNaN(c) || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 126) return -1; // '~'
  return c + 256;
}

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(a.charCodeAt(i));
      const bc = order(b.charCodeAt(j));
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a.charCodeAt(i) === 48) i++;
    while (b.charCodeAt(j) === 48) j++;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a.charCodeAt(i))) return 1;
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/** Negative when a < b, 0 when equal, positive when a > b, in Debian ordering. */
export function compareDebianVersions(a: string, b: string): number {
  const va = parseDebianVersion(a);
  const vb = parseDebianVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  const u = verrevcmp(va.upstream, vb.upstream);
  if (u !== 0) return Math.sign(u);
  return Math.sign(verrevcmp(va.revision, vb.revision));
}
