// Whether this machine can run a node at all, decided before anything is installed or changed:
// `make test-kubelet` skips itself with the reason this returns (test/kubelet/run.ts).

export interface Host {
  readonly platform: NodeJS.Platform;
  /** The effective user id; undefined where the platform has none (Windows). */
  readonly uid: number | undefined;
  /** The text of /proc/filesystems; undefined where it cannot be read. */
  readonly filesystems: string | undefined;
}

/** Why the kubelet, containerd and runc cannot run here, or undefined if nothing stops them. */
export function cannotRun(host: Host): string | undefined {
  if (host.platform !== 'linux') return 'the kubelet and containerd need Linux';
  if (host.uid !== 0) return 'not root (the kubelet, containerd and runc need root)';
  if (host.filesystems === undefined || !/^\S*\toverlay$/m.test(host.filesystems)) return 'no overlay filesystem for containerd';
  return undefined;
}
