// The pool of SDK clients for the controller's own identity (src/aws/clients.ts): one client per
// endpoint, reused; at most `max` kept, least recently used out first; one unused for `idleMs`
// released; a client serving a request never destroyed under it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClientPool } from '../../../src/aws/clients.ts';

class FakeClient {
  destroyed = false;
  readonly key: string;

  constructor(key: string) {
    this.key = key;
  }

  destroy(): void {
    this.destroyed = true;
  }
}

function setup(max = 3, idleMs = 60_000) {
  let now = 0;
  const made: FakeClient[] = [];
  const pool = new ClientPool<FakeClient>({ max, idleMs, now: () => now });
  const use = (key: string, work: (client: FakeClient) => Promise<unknown> = () => Promise.resolve()) =>
    pool.use(
      key,
      () => {
        const client = new FakeClient(key);
        made.push(client);
        return client;
      },
      work,
    );
  return { pool, made, use, advance: (ms: number) => (now += ms) };
}

describe('the client pool', () => {
  it('makes one client per endpoint and reuses it', async () => {
    const { pool, made, use } = setup();
    await use('ecr|us-east-1');
    await use('ecr|us-east-1');
    await use('sts|us-east-1');
    assert.deepEqual(
      made.map((c) => c.key),
      ['ecr|us-east-1', 'sts|us-east-1'],
    );
    assert.equal(pool.size, 2);
  });

  it('keeps at most max clients, releasing the least recently used', async () => {
    const { pool, made, use } = setup(3);
    for (const key of ['a', 'b', 'c']) await use(key);
    await use('a'); // b is now the least recently used
    await use('d');
    assert.equal(pool.size, 3);
    assert.deepEqual(
      made.filter((c) => c.destroyed).map((c) => c.key),
      ['b'],
    );
    for (let i = 0; i < 50; i++) await use(`region-${i}`);
    assert.equal(pool.size, 3);
    assert.equal(made.filter((c) => !c.destroyed).length, 3, 'every client let go is destroyed');
  });

  it('never destroys a client under a request; the bound holds again once it is done', async () => {
    const { pool, made, use } = setup(2);
    let finish = (): void => undefined;
    const held = use(
      'a',
      (client) =>
        new Promise<void>((resolve) => {
          finish = () => {
            assert.equal(client.destroyed, false, 'not destroyed while in use');
            resolve();
          };
        }),
    );
    await use('b');
    await use('c');
    await use('d');
    assert.equal(made.find((c) => c.key === 'a')?.destroyed, false);
    finish();
    await held;
    assert.ok(pool.size <= 2, `${pool.size} clients kept`);
  });

  it('releases a client unused for idleMs', async () => {
    const { pool, made, use, advance } = setup(16, 60_000);
    await use('ecr|eu-west-1');
    advance(59_000);
    await use('ecr|us-east-1');
    assert.equal(pool.size, 2);
    advance(2_000);
    await use('ecr|us-east-1');
    assert.equal(pool.size, 1);
    assert.deepEqual(
      made.filter((c) => c.destroyed).map((c) => c.key),
      ['ecr|eu-west-1'],
    );
  });

  it('clear() releases every client not in use', async () => {
    const { pool, made, use } = setup();
    await use('a');
    await use('b');
    pool.clear();
    assert.equal(pool.size, 0);
    assert.deepEqual(
      made.map((c) => [c.key, c.destroyed]),
      [
        ['a', true],
        ['b', true],
      ],
    );
  });
});
