// One Node and everything it pulls from: a private control plane (never the shared test one), the AWS
// test server behind the token tap, the ECR-shaped registry on 127.0.0.1:443 for two ECR hosts (an
// /etc/hosts line each), containerd with the pause image imported, and a kubelet registered as a Node.
// stop() (or, after a crash, run.ts) sweeps all of it away through the ledger.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultUsers, ensureBinaries, kubeMinor, repoRoot, startControlPlane, type ControlPlane, type KubeMinor } from '../cluster/controlplane.ts';
import { start as startAws, type AwsTestServer } from '../aws/server.ts';
import { containerdPaths, startContainerd, type Containerd } from './containerd.ts';
import { appImage, goArch, pauseImage, pauseRef, tinyBinary } from './images.ts';
import { kubeletPaths, nodeUser, startKubelet, type Kubelet } from './kubelet.ts';
import { addHostsLines, Ledger, sweep } from './machine.ts';
import { ociLayoutTar } from './oci.ts';
import { startRegistry, type Registry } from './registry.ts';
import { makeRegistryTls } from './tls.ts';
import { startTokenTap, type TokenTap } from './tokens.ts';

/** Everything of a run lives here; the ledger beside it says what to undo. */
export const nodeDir = join(repoRoot, '.cache', 'kubelet');
export const ledgerFile = join(repoRoot, '.cache', 'kubelet-ledger.json');

/** The two ECR-shaped registries: two accounts, two regions. */
export const registries = {
  main: '111122223333.dkr.ecr.us-east-1.amazonaws.com',
  second: '444455556666.dkr.ecr.eu-west-1.amazonaws.com',
} as const;

/** Images the registries serve: <host>/<repository>:1. */
export const images = {
  app: `${registries.main}/app:1`,
  /** The repository the GitOps race's Deployment names (test/admission/race.ts). */
  web: `${registries.main}/web:1`,
  tools: `${registries.second}/tools:1`,
} as const;

export const nodeName = 'kubelet-test-node';

export interface TestNode {
  readonly minor: KubeMinor;
  readonly plane: ControlPlane;
  readonly nodeName: string;
  readonly aws: AwsTestServer;
  readonly tap: TokenTap;
  readonly registry: Registry;
  /** The registry's clock runs this many ms ahead of the wall clock (tokens expire sooner for it). */
  registryClockOffsetMs: number;
  readonly kubelet: Kubelet;
  readonly containerd: Containerd;
  readonly logs: string;
  stop(): Promise<void>;
}

export interface NodeOptions {
  /** ECR token lifetime of the AWS test server, seconds. */
  readonly tokenLifetimeSeconds: number;
  readonly log?: (message: string) => void;
}

/** Starts the whole node; on any failure, sweeps what was started and rethrows. */
export async function startTestNode(options: NodeOptions): Promise<TestNode> {
  const log = options.log ?? ((): void => undefined);
  const stale = Ledger.load(ledgerFile);
  if (stale !== undefined) {
    log('sweeping what an earlier run left');
    await sweep(stale);
  }
  rmSync(nodeDir, { recursive: true, force: true });
  const logs = join(nodeDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const ledger = new Ledger(ledgerFile, { dir: nodeDir, hostsMarker: `kube-ecrlogin test-kubelet ${nodeDir}`, pids: {}, createdDirs: [] });
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const problems = await sweep(ledger);
    if (problems.length > 0) throw new Error(`cleanup left problems: ${problems.join('; ')}`);
    rmSync(ledgerFile, { force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    void stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const closers: (() => Promise<void>)[] = [];
  try {
    const minor = kubeMinor();
    const bin = ensureBinaries(minor, ['kubelet']);
    ledger.update((data) => {
      data.controlPlaneDir = join(nodeDir, 'cluster');
    });
    const planeStarted = startControlPlane({ dir: join(nodeDir, 'cluster'), minor, users: [...defaultUsers, nodeUser(nodeName)] });
    planeStarted.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
    // Test helpers that find "the" control plane (cluster()) find this one.
    process.env['KUBE_ECRLOGIN_CLUSTER_DIR'] = join(nodeDir, 'cluster');

    const aws = await startAws({ tokenLifetimeSeconds: options.tokenLifetimeSeconds });
    closers.push(() => aws.close());
    const tap = await startTokenTap(aws.endpoint);
    closers.push(() => tap.close());

    const hosts = Object.values(registries);
    const tls = makeRegistryTls(join(nodeDir, 'pki'), hosts);
    const node: { registryClockOffsetMs: number } = { registryClockOffsetMs: 0 };
    const registry = await startRegistry({ cert: tls.cert, key: tls.key, tokens: tap.book, now: () => Date.now() + node.registryClockOffsetMs });
    closers.push(() => registry.close());
    addHostsLines(ledger, hosts);

    const binary = tinyBinary(join(repoRoot, '.cache', 'kubelet-images'));
    for (const ref of Object.values(images)) {
      const { host, repository, tag } = splitRef(ref);
      registry.push(host, repository, tag, appImage(binary, ref));
    }
    const pauseTar = join(nodeDir, 'pause.tar');
    writeFileSync(pauseTar, ociLayoutTar(pauseImage(binary), pauseRef, goArch()));

    log('starting containerd');
    const containerd = await startContainerd(containerdPaths(join(nodeDir, 'containerd'), logs), {
      sandboxImage: pauseRef,
      registries: hosts,
      caFile: tls.caFile,
      ledger,
    });
    await containerd.ctr(['images', 'import', pauseTar]);

    const plane = await planeStarted;
    log(`control plane ${plane.server}; starting the kubelet`);
    const kubelet = await startKubelet(plane, kubeletPaths(join(nodeDir, 'kubelet'), logs), {
      nodeName,
      socket: containerd.paths.socket,
      bin: join(bin, 'kubelet'),
      ledger,
    });
    const result: TestNode = {
      minor,
      plane,
      nodeName,
      aws,
      tap,
      registry,
      get registryClockOffsetMs() {
        return node.registryClockOffsetMs;
      },
      set registryClockOffsetMs(value: number) {
        node.registryClockOffsetMs = value;
      },
      kubelet,
      containerd,
      logs,
      stop: async () => {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
        for (const close of closers.reverse()) await close().catch(() => undefined);
        await stop();
      },
    };
    return result;
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    await stop().catch(() => undefined);
    throw error;
  }
}

/** host, repository and tag of <host>/<repository>:<tag>. */
export function splitRef(ref: string): { host: string; repository: string; tag: string } {
  const match = /^([^/]+)\/(.+):([^:/]+)$/.exec(ref);
  if (match === null) throw new Error(`not <host>/<repository>:<tag>: ${ref}`);
  return { host: match[1]!, repository: match[2]!, tag: match[3]! };
}
