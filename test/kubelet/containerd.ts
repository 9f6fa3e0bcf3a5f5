// containerd (Debian's 1.6) as a process of its own: its own root, state, socket, runc root and
// registry configuration (certs.d, with hosts.toml trusting the local CA), so that it shares nothing
// with a containerd the machine may run.

import { spawn, execFile } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { shimSocketDir, type Ledger } from './machine.ts';

const execFileAsync = promisify(execFile);

export interface ContainerdPaths {
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly socket: string;
  readonly config: string;
  readonly runcRoot: string;
  readonly certsDir: string;
  readonly log: string;
}

export function containerdPaths(dir: string, logs: string): ContainerdPaths {
  return {
    dir,
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    socket: join(dir, 'containerd.sock'),
    config: join(dir, 'config.toml'),
    runcRoot: join(dir, 'runc'),
    certsDir: join(dir, 'certs.d'),
    log: join(logs, 'containerd.log'),
  };
}

/**
 * containerd's configuration. restrict_oom_score_adj: root on these machines lacks CAP_SYS_RESOURCE,
 * so runc cannot lower a container's oom_score_adj below containerd's own, and every sandbox would fail
 * with "can't get final child's PID from pipe: EOF".
 */
export function containerdConfig(paths: ContainerdPaths, sandboxImage: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = ${toml(paths.root)}
state = ${toml(paths.state)}
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = ${toml(paths.socket)}

[ttrpc]
  address = ${toml(`${paths.socket}.ttrpc`)}

[debug]
  level = "info"

[${cri}]
  sandbox_image = ${toml(sandboxImage)}
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

[${cri}.cni]
  bin_dir = ${toml(join(paths.dir, 'cni', 'bin'))}
  conf_dir = ${toml(join(paths.dir, 'cni', 'conf'))}

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[${cri}.containerd.runtimes.runc.options]
  Root = ${toml(paths.runcRoot)}
  SystemdCgroup = false

[${cri}.registry]
  config_path = ${toml(paths.certsDir)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${toml(join(paths.dir, 'opt'))}
`;
}

/** certs.d/<host>/hosts.toml: the registry for host is itself, over TLS from the local CA. */
export function hostsToml(host: string, caFile: string): string {
  return `server = ${toml(`https://${host}`)}

[host.${toml(`https://${host}`)}]
  capabilities = ["pull", "resolve"]
  ca = ${toml(caFile)}
`;
}

function toml(value: string): string {
  return JSON.stringify(value);
}

export interface Containerd {
  readonly paths: ContainerdPaths;
  readonly pid: number;
  /** Runs ctr against this containerd, in the CRI's namespace. */
  ctr(args: readonly string[]): Promise<string>;
}

/** Writes the configuration, starts containerd (recorded in the ledger) and waits for its socket. */
export async function startContainerd(
  paths: ContainerdPaths,
  options: { readonly sandboxImage: string; readonly registries: readonly string[]; readonly caFile: string; readonly ledger: Ledger },
): Promise<Containerd> {
  for (const sub of [paths.root, paths.state, paths.runcRoot, join(paths.dir, 'cni', 'bin'), join(paths.dir, 'cni', 'conf')])
    mkdirSync(sub, { recursive: true });
  writeFileSync(paths.config, containerdConfig(paths, options.sandboxImage));
  for (const host of options.registries) {
    mkdirSync(join(paths.certsDir, host), { recursive: true });
    writeFileSync(join(paths.certsDir, host, 'hosts.toml'), hostsToml(host, options.caFile));
  }
  options.ledger.notePossiblyCreated(['/run/containerd', shimSocketDir]);
  options.ledger.noteCgroups();
  options.ledger.update((data) => {
    data.containerdSocket = paths.socket;
    data.runcRoot = paths.runcRoot;
    data.shimSocketsBefore = existsSync(shimSocketDir) ? readdirSync(shimSocketDir) : [];
  });
  const out = openSync(paths.log, 'a');
  // A process group of its own: a Ctrl-C reaches the tests, whose sweep stops the kubelet, the
  // containers and then containerd, in that order.
  const child = spawn('containerd', ['--config', paths.config], { stdio: ['ignore', out, out], detached: true });
  closeSync(out);
  if (child.pid === undefined) throw new Error('could not start containerd');
  const pid = child.pid;
  options.ledger.update((data) => {
    data.pids['containerd'] = pid;
  });
  child.unref();
  const ctr = async (args: readonly string[]): Promise<string> =>
    (await execFileAsync('ctr', ['--address', paths.socket, '--namespace', 'k8s.io', ...args], { maxBuffer: 16 << 20 })).stdout;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await ctr(['version']);
      break;
    } catch (error) {
      if (child.exitCode !== null) throw new Error(`containerd exited ${child.exitCode} (log: ${paths.log})`, { cause: error });
      if (Date.now() > deadline) throw new Error(`containerd did not serve within 30 s (log: ${paths.log})`, { cause: error });
      await sleep(100);
    }
  }
  return { paths, pid, ctr };
}
