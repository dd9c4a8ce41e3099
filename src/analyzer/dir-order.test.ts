import { describe, expect, it } from 'vitest';
import { DirectoryOrder } from './dir-order.js';

const orderAfter = (...paths: string[]): DirectoryOrder => {
  const order = new DirectoryOrder();
  for (const p of paths) order.saw(p);
  return order;
};

describe('DirectoryOrder', () => {
  it('says a directory is late once anything below it, at any depth, came first', () => {
    const order = orderAfter('/opt/alias/x', '/etc/motd');
    expect(order.seenBelow('/opt/alias')).toBe(true);
    expect(order.seenBelow('/opt')).toBe(true);
    expect(order.seenBelow('/etc')).toBe(true);
  });

  it('does not take the entry itself, a sibling or a name sharing a prefix for something below', () => {
    const order = orderAfter('/opt/alias', '/opt/aliasx/y', '/usr/lib/x');
    expect(order.seenBelow('/opt/alias')).toBe(false);
    expect(order.seenBelow('/opt/alia')).toBe(false);
    expect(order.seenBelow('/usr/lib/x')).toBe(false);
    expect(order.seenBelow('/srv')).toBe(false);
  });

  it('takes a directory deeper than it keeps to be late, never on time', () => {
    const deep = `/${Array.from({ length: 40 }, (_, i) => `d${i}`).join('/')}`;
    expect(orderAfter().seenBelow(deep)).toBe(true);
    expect(orderAfter().seenBelow(deep.split('/').slice(0, 32).join('/'))).toBe(false);
  });

  it('takes every directory to be late once it has kept as many ancestors as it may', () => {
    const order = new DirectoryOrder();
    // 2^18 kept at most; a margin for the hashes of distinct names that collide.
    for (let i = 0; i < (1 << 18) + 10_000; i++) order.saw(`/many/${i}/x`);
    expect(order.seenBelow('/never/listed')).toBe(true);
  });
});
