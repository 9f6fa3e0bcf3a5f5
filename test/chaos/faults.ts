// The faults, each against the real control plane with the controller running. A fault waits for its
// moment (just before a refresh is due, or while one is under way), disturbs one thing, and clears;
// the runner then measures how long the world takes to converge.

import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultSpec } from '../aws/faults.ts';
import type { Chaos } from './harness.ts';

export interface FaultRun {
  /** When the disturbance began and when it was cleared, epoch ms. */
  readonly start: number;
  readonly clear: number;
  readonly note?: string;
}

export interface Fault {
  readonly name: string;
  readonly description: string;
  /** Restarts etcd or kube-apiserver: only on a private control plane. */
  readonly restartsControlPlane?: boolean;
  inject(chaos: Chaos): Promise<FaultRun>;
}

/** How long the timed faults last, ms. */
export interface FaultDurations {
  readonly aws: number;
  readonly throttle: number;
  readonly watchCuts: number;
  readonly watchCutEvery: number;
  readonly controllerDown: number;
  readonly etcdDown: number;
  readonly partition: number;
}

export const fullDurations: FaultDurations = {
  aws: 15_000,
  throttle: 15_000,
  watchCuts: 20_000,
  watchCutEvery: 2_000,
  controllerDown: 10_000,
  etcdDown: 3_000,
  partition: 15_000,
};

function awsFault(name: string, description: string, specs: FaultSpec[], durationMs: (d: FaultDurations) => number, d: FaultDurations): Fault {
  return {
    name,
    description,
    async inject(chaos) {
      await chaos.beforeNextRefresh(1_000);
      const start = Date.now();
      await chaos.aws.control.setFaults(...specs);
      await sleep(durationMs(d));
      await chaos.aws.control.clearFaults();
      return { start, clear: Date.now() };
    },
  };
}

export function faults(d: FaultDurations = fullDurations): Record<string, Fault> {
  const all: Fault[] = [
    {
      name: 'kube-apiserver restart',
      description: 'kube-apiserver stopped (SIGTERM) while a refresh is under way and started again with the same flags',
      restartsControlPlane: true,
      async inject(chaos) {
        await chaos.refreshUnderWay();
        const start = Date.now();
        await chaos.plane.restart('kube-apiserver');
        return { start, clear: Date.now() };
      },
    },
    {
      name: 'etcd restart',
      description: `etcd stopped (SIGTERM) just before a refresh, down ${d.etcdDown / 1000} s, started again on the same data`,
      restartsControlPlane: true,
      async inject(chaos) {
        await chaos.beforeNextRefresh(1_000);
        const start = Date.now();
        await chaos.plane.restart('etcd', { downMs: d.etcdDown });
        return { start, clear: Date.now() };
      },
    },
    {
      name: 'watch cuts',
      description: `every connection between the controller and kube-apiserver (watches, requests, Lease renewals) reset every ${d.watchCutEvery / 1000} s for ${d.watchCuts / 1000} s, the last cut as it clears (a TCP proxy)`,
      async inject(chaos) {
        await chaos.beforeNextRefresh(3_000);
        const before = chaos.proxy.cut;
        const start = Date.now();
        chaos.proxy.cutAll();
        const stop = chaos.proxy.cutEvery(d.watchCutEvery);
        await sleep(d.watchCuts);
        stop();
        chaos.proxy.cutAll();
        return { start, clear: Date.now(), note: `${chaos.proxy.cut - before} connections cut` };
      },
    },
    {
      name: 'apiserver unreachable',
      description: `every connection between the controller and kube-apiserver reset, new ones too, for ${d.partition / 1000} s (a partition, longer than the renew deadline)`,
      async inject(chaos) {
        await chaos.beforeNextRefresh(3_000);
        const start = Date.now();
        const heal = chaos.proxy.partition();
        await sleep(d.partition);
        heal();
        return { start, clear: Date.now() };
      },
    },
    awsFault(
      'AWS throttling',
      'every AWS call throttled (ThrottlingException / Throttling) for longer than one backoff cap',
      [{ api: '*', kind: 'throttle' }],
      (x) => x.throttle,
      d,
    ),
    awsFault(
      'AWS 5xx',
      'every AWS call answered 500 (ECR) or 503 (STS)',
      [
        { api: 'GetAuthorizationToken', kind: 'internal' },
        { api: '*', kind: 'unavailable' },
      ],
      (x) => x.aws,
      d,
    ),
    awsFault(
      'AWS slow',
      'every AWS call answered after 10 s (the controller gives up after --aws-timeout 3s)',
      [{ api: '*', kind: 'latency', ms: 10_000 }],
      (x) => x.aws,
      d,
    ),
    awsFault('AWS resets', 'every AWS connection closed without an answer', [{ api: '*', kind: 'drop' }], (x) => x.aws, d),
    {
      name: 'leader killed',
      description: 'the leader of two replicas SIGKILLed while it applies Secrets; restarted once the standby has had time to take over',
      async inject(chaos) {
        const leader = await chaos.leader();
        if (leader === undefined) throw new Error('no leader to kill');
        await chaos.refreshUnderWay(leader);
        const start = Date.now();
        await leader.kill('SIGKILL');
        // Past the Lease's duration, so that the standby must take over.
        await sleep(chaos.settings.leaseDurationMs + 5_000);
        leader.start();
        const now = await chaos.leader();
        return { start, clear: Date.now(), note: `${leader.name} killed; leader after: ${now?.name ?? 'none yet'}` };
      },
    },
    {
      name: 'controller killed',
      description: `every replica SIGKILLed while Secrets are being applied, started again ${d.controllerDown / 1000} s later`,
      async inject(chaos) {
        await chaos.refreshUnderWay();
        const start = Date.now();
        await Promise.all(chaos.replicas.map((r) => r.kill('SIGKILL')));
        await sleep(d.controllerDown);
        for (const replica of chaos.replicas) replica.start();
        return { start, clear: Date.now() };
      },
    },
  ];
  return Object.fromEntries(all.map((fault) => [fault.name, fault]));
}
