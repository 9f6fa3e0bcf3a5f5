// The informer's paged list against the real apiserver: every page read, each object transformed as
// its page arrives, and a watch from the pages' snapshot that misses nothing.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { Informer, type ListPage } from '../../src/kube/informer.ts';
import { createLogger } from '../../src/log.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';

describe('informer lists in pages', () => {
  const run = uniqueName('paged');
  const label = 'paged-informer-test';
  const names = Array.from({ length: 5 }, (_, i) => `${run}-${String(i)}`);
  const config = cluster().adminConfig();
  const core = config.makeApiClient(k8s.CoreV1Api);
  const log = createLogger({ level: 'error' });

  before(async () => {
    for (const name of names) await core.createNamespace({ body: { metadata: { name, labels: { [label]: run } } } });
  });

  after(async () => {
    for (const name of [...names, `${run}-late`]) await core.deleteNamespace({ name }).catch(() => undefined);
  });

  /** An informer over this run's namespaces whose list calls are recorded, and fail with the status `failing` gives. */
  function informer(
    pageSize: number,
    failing?: (page: ListPage) => number | undefined,
  ): { informer: Informer<k8s.V1Namespace>; pages: ListPage[]; transformed: string[] } {
    const pages: ListPage[] = [];
    const transformed: string[] = [];
    const informer = new Informer<k8s.V1Namespace>({
      name: 'namespaces',
      config,
      path: '/api/v1/namespaces',
      list: (page) => {
        pages.push(page);
        const status = failing?.(page);
        if (status !== undefined) return Promise.reject(new k8s.ApiException(status, `HTTP ${String(status)}`, {}, {}));
        return core.listNamespace({ ...page, labelSelector: `${label}=${run}` });
      },
      listPageSize: pageSize,
      minRestartDelayMs: 50,
      labelSelector: `${label}=${run}`,
      log,
      transform: (ns) => {
        transformed.push(ns.metadata?.name ?? '');
        return ns;
      },
    });
    return { informer, pages, transformed };
  }

  const cached = (i: Informer<k8s.V1Namespace>): string[] =>
    i
      .list()
      .map((ns) => ns.metadata?.name ?? '')
      .sort();

  it('reads five namespaces in three pages of two, transforms each once, and watches from their snapshot', async () => {
    const { informer: namespaces, pages, transformed } = informer(2);
    await namespaces.start();
    try {
      assert.deepEqual(cached(namespaces), names);
      assert.equal(pages.length, 3);
      assert.deepEqual(
        pages.map((p) => p.limit),
        [2, 2, 2],
      );
      assert.equal(pages[0]?._continue, undefined);
      assert.ok(
        pages.slice(1).every((p) => typeof p._continue === 'string' && p._continue !== ''),
        'later pages continue the first',
      );
      assert.deepEqual([...transformed].sort(), names);

      // A namespace created after the list arrives by the watch, which began at the pages' resourceVersion.
      await core.createNamespace({ body: { metadata: { name: `${run}-late`, labels: { [label]: run } } } });
      await eventually('the watch delivers the late namespace', () =>
        namespaces.get(`${run}-late`) === undefined ? Promise.reject(new Error('not yet')) : Promise.resolve(),
      );
      assert.equal(pages.length, 3, 'no second list');
    } finally {
      // Out of the other tests' selection at once (a namespace takes a while to go).
      const late = await core.readNamespace({ name: `${run}-late` }).catch(() => undefined);
      if (late?.metadata?.labels !== undefined) {
        late.metadata.labels = Object.fromEntries(Object.entries(late.metadata.labels).filter(([key]) => key !== label));
        await core.replaceNamespace({ name: `${run}-late`, body: late });
      }
      await namespaces.stop();
    }
  });

  it('lists whole when a continue token has expired (410 Gone), as client-go does', async () => {
    const { informer: namespaces, pages } = informer(2, (page) => (page._continue !== undefined ? 410 : undefined));
    await namespaces.start();
    try {
      assert.ok(cached(namespaces).length >= names.length);
      assert.deepEqual(
        cached(namespaces).filter((name) => names.includes(name)),
        names,
      );
      assert.equal(pages.length, 3, 'first page, the expired continue, the whole list');
      assert.deepEqual(pages[2], {});
    } finally {
      await namespaces.stop();
    }
  });

  it('gives up a list on any other error on a later page, and the informer lists again from the first page', async () => {
    let failures = 0;
    const { informer: namespaces, pages } = informer(2, (page) => (page._continue !== undefined && failures++ === 0 ? 500 : undefined));
    await namespaces.start();
    try {
      assert.deepEqual(cached(namespaces), names);
      assert.equal(failures, 3, 'one failed continue, then two good ones');
      assert.deepEqual(
        pages.map((p) => p._continue === undefined),
        [true, false, true, false, false],
        'first page, failed continue, then a fresh paged list',
      );
    } finally {
      await namespaces.stop();
    }
  });
});
