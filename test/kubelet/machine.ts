// What a node run changes on the machine, written down before it is changed, and the sweep that
// undoes all of it: processes (kubelet, containerd, its shims and every container), mounts, /etc/hosts
// lines, the sysctls the kubelet sets, and the directories containerd 1.6 and the kubelet create outside
// their own. The ledger is a file, so that whoever outlives a crash (test/kubelet/run.ts) can sweep too.
// Every step is idempotent: sweeping twice, or a ledger of a run that never got far, is fine.

import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopControlPlaneIn } from '../cluster/controlplane.ts';

/** The sysctls the kubelet sets at start unless protectKernelDefaults (pkg/kubelet/cm, setupKernelTunables). */
export const kubeletSysctls = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
] as const;

/** containerd 1.6 puts every shim's socket here, whatever its state directory (runtime/v2/shim). */
export const shimSocketDir = '/run/containerd/s';
/** The kubelet links every container's log here, whatever its podLogsDir (kuberuntime.ContainerLogsDir). */
export const containerLogLinks = '/var/log/containers';
/** The kubelet's device plugin socket lives here, whatever its root directory (pluginapi.DevicePluginPath). */
export const devicePlugins = '/var/lib/kubelet/device-plugins';

export interface LedgerData {
  /** The directory everything of the run lives in (mounts under it are unmounted). */
  readonly dir: string;
  /** Marks the /etc/hosts lines the run added. */
  readonly hostsMarker: string;
  /** Sysctl values before the kubelet started (path under /proc/sys -> value). */
  sysctls?: Record<string, string>;
  /** Processes started, by name. */
  pids: Record<string, number>;
  containerdSocket?: string;
  /** runc's state root (containerd's runtime option Root). */
  runcRoot?: string;
  /** Entries of shimSocketDir before containerd started. */
  shimSocketsBefore?: string[];
  /** Directories outside dir that did not exist before the run (removed when empty). */
  createdDirs: string[];
  /** Cgroups (containerd's namespace parent in each hierarchy) that did not exist before the run. */
  createdCgroups?: string[];
  /** A control plane directory to stop. */
  controlPlaneDir?: string;
}

/** The ledger file: every change is recorded here before it is made. */
export class Ledger {
  readonly file: string;
  data: LedgerData;

  constructor(file: string, data: LedgerData) {
    this.file = file;
    this.data = data;
    this.save();
  }

  static load(file: string): Ledger | undefined {
    if (!existsSync(file)) return undefined;
    return new Ledger(file, JSON.parse(readFileSync(file, 'utf8')) as LedgerData);
  }

  update(change: (data: LedgerData) => void): void {
    change(this.data);
    this.save();
  }

  /** Records the directories in `paths` that do not exist yet, before something creates them. */
  notePossiblyCreated(paths: readonly string[]): void {
    this.update((data) => {
      for (const path of paths) if (!existsSync(path) && !data.createdDirs.includes(path)) data.createdDirs.push(path);
    });
  }

  /** Records containerd's cgroup parents (`k8s.io` in each hierarchy) that do not exist yet. */
  noteCgroups(): void {
    this.update((data) => {
      data.createdCgroups = [...new Set([...(data.createdCgroups ?? []), ...containerdCgroups().filter((path) => !existsSync(path))])];
    });
  }

  private save(): void {
    writeFileSync(this.file, JSON.stringify(this.data, null, 2) + '\n');
  }
}

// --- /etc/hosts ---------------------------------------------------------------------------------------

const hostsFile = '/etc/hosts';

/** The hosts file with `hosts` resolving to 127.0.0.1, on lines carrying the marker. */
export function withHostsLines(text: string, hosts: readonly string[], marker: string): string {
  const kept = withoutHostsLines(text, marker);
  const lines = hosts.map((host) => `127.0.0.1 ${host} # ${marker}`);
  return `${kept}${kept === '' || kept.endsWith('\n') ? '' : '\n'}${lines.join('\n')}\n`;
}

/** The hosts file without the lines carrying the marker. */
export function withoutHostsLines(text: string, marker: string): string {
  return text
    .split(/(?<=\n)/)
    .filter((line) => !line.trimEnd().endsWith(`# ${marker}`))
    .join('');
}

/** Edits /etc/hosts in place (it may be a bind mount, where a rename would fail). */
export function addHostsLines(ledger: Ledger, hosts: readonly string[]): void {
  writeFileSync(hostsFile, withHostsLines(readFileSync(hostsFile, 'utf8'), hosts, ledger.data.hostsMarker));
}

function removeHostsLines(marker: string): void {
  const text = readFileSync(hostsFile, 'utf8');
  const kept = withoutHostsLines(text, marker);
  if (kept !== text) writeFileSync(hostsFile, kept);
}

// --- sysctls --------------------------------------------------------------------------------------------

export function readSysctls(): Record<string, string> {
  const values: Record<string, string> = {};
  for (const name of kubeletSysctls) {
    const path = join('/proc/sys', name);
    if (existsSync(path)) values[name] = readFileSync(path, 'utf8').trim();
  }
  return values;
}

function restoreSysctls(saved: Readonly<Record<string, string>>): void {
  for (const [name, value] of Object.entries(saved)) {
    const path = join('/proc/sys', name);
    if (readFileSync(path, 'utf8').trim() !== value) writeFileSync(path, `${value}\n`);
  }
}

// --- processes ----------------------------------------------------------------------------------------

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}

/** Stops a process the run started, if it is still that process (its command line names the run's dir). */
async function stopProcess(pid: number, dir: string, graceMs = 10_000): Promise<void> {
  const alive = (): boolean => cmdline(pid)?.includes(dir) ?? false;
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await sleep(50);
  if (alive()) process.kill(pid, 'SIGKILL');
  while (alive()) await sleep(20);
}

/** Shim processes serving our containerd (their command line names its socket). */
function shimPids(socket: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      const line = cmdline(pid);
      return line !== undefined && line.includes('containerd-shim') && line.includes(`-address ${socket}`);
    });
}

/** Every container runc knows under our root: killed and deleted (which removes its cgroups). */
function deleteContainers(runcRoot: string): void {
  if (!existsSync(runcRoot)) return;
  for (const namespace of readdirSync(runcRoot)) {
    const root = join(runcRoot, namespace);
    for (const id of readdirSync(root)) {
      try {
        execFileSync('runc', ['--root', root, 'delete', '--force', id], { stdio: 'ignore', timeout: 15_000 });
      } catch {
        // already gone
      }
    }
  }
}

// --- cgroups ---------------------------------------------------------------------------------------------

const cgroupRoot = '/sys/fs/cgroup';

/**
 * Where runc puts containerd's containers when the kubelet names no cgroup parent (cgroupsPerQOS
 * false): /k8s.io/<id> in each hierarchy (cgroup v1), or in the one tree (v2).
 */
function containerdCgroups(): string[] {
  if (existsSync(join(cgroupRoot, 'cgroup.controllers'))) return [join(cgroupRoot, 'k8s.io')];
  return readdirSync(cgroupRoot, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.isSymbolicLink())
    .map((entry) => join(cgroupRoot, entry.name, 'k8s.io'));
}

/** Removes a cgroup and the cgroups under it, deepest first (rmdir is how a cgroup is removed). */
function removeCgroup(path: string): void {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroup(join(path, entry.name));
  }
  rmdirSync(path);
}

// --- mounts ---------------------------------------------------------------------------------------------

/** Mount points under dir, longest first: a mount inside another comes before it. */
export function mountsUnder(dir: string, mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map((point) => point.replace(/\\(\d{3})/g, (_, code: string) => String.fromCharCode(parseInt(code, 8))))
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

function unmountUnder(dir: string): void {
  for (const point of mountsUnder(dir)) {
    try {
      execFileSync('umount', [point], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', ['-l', point], { stdio: 'ignore' });
    }
  }
}

// --- the sweep ------------------------------------------------------------------------------------------

/** Undoes everything the ledger records, in an order that leaves nothing running or mounted. */
export async function sweep(ledger: Ledger): Promise<string[]> {
  const data = ledger.data;
  const problems: string[] = [];
  const step = async (what: string, action: () => unknown): Promise<void> => {
    try {
      await action();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  // The kubelet first, so that it restarts nothing; then every container (runc, under our root), so
  // that no workload outlives its shim; then containerd and whatever shim is left.
  if (data.pids['kubelet'] !== undefined) await step('stop the kubelet', () => stopProcess(data.pids['kubelet']!, data.dir));
  if (data.runcRoot !== undefined) await step('delete containers', () => deleteContainers(data.runcRoot!));
  if (data.pids['containerd'] !== undefined) await step('stop containerd', () => stopProcess(data.pids['containerd']!, data.dir));
  if (data.containerdSocket !== undefined) {
    await step('stop shims', async () => {
      for (const pid of shimPids(data.containerdSocket!)) process.kill(pid, 'SIGKILL');
      const deadline = Date.now() + 5_000;
      while (shimPids(data.containerdSocket!).length > 0 && Date.now() < deadline) await sleep(20);
    });
  }
  if (data.controlPlaneDir !== undefined) await step('stop the control plane', () => stopControlPlaneIn(data.controlPlaneDir!));
  await step('unmount', () => unmountUnder(data.dir));
  await step('/etc/hosts', () => removeHostsLines(data.hostsMarker));
  if (data.sysctls !== undefined) await step('sysctls', () => restoreSysctls(data.sysctls!));
  if (data.shimSocketsBefore !== undefined && existsSync(shimSocketDir)) {
    await step('shim sockets', () => {
      for (const name of readdirSync(shimSocketDir)) {
        if (!data.shimSocketsBefore!.includes(name)) rmSync(join(shimSocketDir, name), { recursive: true, force: true });
      }
    });
  }
  await step('container log links', () => {
    if (!existsSync(containerLogLinks)) return;
    for (const name of readdirSync(containerLogLinks)) {
      const path = join(containerLogLinks, name);
      if (lstatSync(path).isSymbolicLink() && readlinkSync(path).startsWith(`${data.dir}/`)) rmSync(path);
    }
  });
  for (const path of data.createdCgroups ?? []) await step(`remove cgroup ${path}`, () => removeCgroup(path));
  if (data.createdDirs.includes(devicePlugins)) await step('device plugin socket', () => rmSync(join(devicePlugins, 'kubelet.sock'), { force: true }));
  // Deepest first, and only when empty: something else may have come to live there meanwhile.
  for (const path of [...data.createdDirs].sort((a, b) => b.length - a.length)) {
    await step(`remove ${path}`, () => {
      if (existsSync(path) && readdirSync(path).length === 0) rmdirSync(path);
    });
  }
  ledger.update((d) => {
    d.pids = {};
  });
  return problems;
}
