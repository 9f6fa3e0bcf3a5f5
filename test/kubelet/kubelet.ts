// The kubelet, built from the same Kubernetes module as the control plane, as a process of its own:
// its own root directory, certificates, Pod log directory and volume plugin directory, serving on
// loopback ports, talking to our containerd, registered as one Node.
//
// The settings that let it run on these machines: no QoS or Pod cgroups and no node allocatable
// enforcement (cgroup v1, no systemd), swap and cgroup v1 tolerated, no local storage isolation.

import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../cluster/controlplane.ts';
import { freePorts } from '../cluster/controlplane.ts';
import { eventually } from '../support/eventually.ts';
import { containerLogLinks, devicePlugins, readSysctls, type Ledger } from './machine.ts';

export interface KubeletPaths {
  readonly dir: string;
  readonly root: string;
  readonly config: string;
  readonly kubeconfig: string;
  readonly log: string;
}

export function kubeletPaths(dir: string, logs: string): KubeletPaths {
  return {
    dir,
    root: join(dir, 'root'),
    config: join(dir, 'config.yaml'),
    kubeconfig: join(dir, 'kubeconfig'),
    log: join(logs, 'kubelet.log'),
  };
}

/** The Node's user in the control plane's token file: what the Node authorizer would call it. */
export function nodeUser(nodeName: string): { name: string; groups: string[] } {
  return { name: `system:node:${nodeName}`, groups: ['system:nodes'] };
}

export function kubeletConfig(paths: KubeletPaths, options: { readonly socket: string; readonly port: number; readonly healthzPort: number }): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: '127.0.0.1',
    port: options.port,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: options.healthzPort,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false } },
    authorization: { mode: 'AlwaysAllow' },
    containerRuntimeEndpoint: `unix://${options.socket}`,
    cgroupDriver: 'cgroupfs',
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    failCgroupV1: false,
    localStorageCapacityIsolation: false,
    podLogsDir: join(paths.dir, 'pod-logs'),
    volumePluginDir: join(paths.dir, 'volume-plugins'),
    // Every test Pod pulls in parallel; the registry is local.
    serializeImagePulls: false,
    registryPullQPS: 0,
    // Fast status for the tests' polling; nothing here needs the defaults' economy.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '5s',
    fileCheckFrequency: '5s',
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
    shutdownGracePeriod: '0s',
  });
}

export interface Kubelet {
  readonly nodeName: string;
  readonly pid: number;
  readonly paths: KubeletPaths;
}

/**
 * Starts the kubelet as `nodeName` (a user the control plane's token file knows, bound to the
 * system:node ClusterRole here: the apiserver runs RBAC only, without the Node authorizer), and waits
 * for its Node. The sysctls it is about to change are recorded in the ledger first.
 */
export async function startKubelet(
  plane: ControlPlane,
  paths: KubeletPaths,
  options: { readonly nodeName: string; readonly socket: string; readonly bin: string; readonly ledger: Ledger },
): Promise<Kubelet> {
  const { nodeName, ledger } = options;
  const user = nodeUser(nodeName);
  await plane
    .adminConfig()
    .makeApiClient(k8s.RbacAuthorizationV1Api)
    .createClusterRoleBinding({
      body: {
        metadata: { name: `kubelet-test-${nodeName}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:node' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user.name }],
      },
    });
  mkdirSync(paths.root, { recursive: true });
  plane.writeKubeconfig(plane.configForToken(user.name, plane.tokenOf(user.name)), paths.kubeconfig);
  const [port = 0, healthzPort = 0] = await freePorts(2);
  writeFileSync(paths.config, kubeletConfig(paths, { socket: options.socket, port, healthzPort }));

  ledger.notePossiblyCreated([containerLogLinks, dirname(devicePlugins), devicePlugins]);
  ledger.update((data) => {
    data.sysctls ??= readSysctls();
  });
  const out = openSync(paths.log, 'a');
  // A process group of its own, as containerd's: only the sweep stops it.
  const child = spawn(
    options.bin,
    [
      `--config=${paths.config}`,
      `--kubeconfig=${paths.kubeconfig}`,
      `--root-dir=${paths.root}`,
      `--cert-dir=${join(paths.dir, 'pki')}`,
      `--hostname-override=${nodeName}`,
      '--v=2',
    ],
    { stdio: ['ignore', out, out], detached: true },
  );
  closeSync(out);
  if (child.pid === undefined) throw new Error('could not start the kubelet');
  const pid = child.pid;
  ledger.update((data) => {
    data.pids['kubelet'] = pid;
  });
  child.unref();
  const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
  await eventually(
    `Node ${nodeName} (kubelet log: ${paths.log})`,
    async () => {
      if (child.exitCode !== null) throw new Error(`the kubelet exited ${child.exitCode}`);
      return core.readNode({ name: nodeName });
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  return { nodeName, pid, paths };
}
