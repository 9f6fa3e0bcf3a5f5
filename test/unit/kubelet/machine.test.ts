// The pure parts of what a node run changes on the machine: its /etc/hosts lines, and finding the mounts
// under its directory.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mountsUnder, withHostsLines, withoutHostsLines } from '../../kubelet/machine.ts';

describe('/etc/hosts lines', () => {
  const marker = 'kube-ecrlogin test-kubelet /repo/.cache/kubelet';
  const original = '127.0.0.1 localhost\n::1 localhost ip6-localhost\n';

  it('adds one marked line per host and removes exactly those, leaving the file as it was', () => {
    const added = withHostsLines(original, ['a.example', 'b.example'], marker);
    assert.equal(added, `${original}127.0.0.1 a.example # ${marker}\n127.0.0.1 b.example # ${marker}\n`);
    assert.equal(withoutHostsLines(added, marker), original);
  });

  it('adds no line twice when run again, and ends a file that lacks a final newline before adding', () => {
    const once = withHostsLines('127.0.0.1 localhost', ['a.example'], marker);
    assert.equal(once, `127.0.0.1 localhost\n127.0.0.1 a.example # ${marker}\n`);
    assert.equal(withHostsLines(once, ['a.example'], marker), once);
  });

  it('leaves lines of another run (another marker) and unmarked mentions of the host alone', () => {
    const other = `127.0.0.1 a.example # kube-ecrlogin test-kubelet /elsewhere/.cache/kubelet\n10.0.0.1 a.example\n`;
    assert.equal(withoutHostsLines(withHostsLines(other, ['a.example'], marker), marker), other);
  });
});

describe('mounts under a directory', () => {
  const line = (point: string, fs: string): string => `100 1 0:1 / ${point} rw,relatime shared:1 - ${fs} none rw`;
  const mountinfo = [
    line('/', 'ext4'),
    line('/repo/.cache/kubelet/kubelet/root', 'ext4'),
    line('/repo/.cache/kubelet/kubelet/root/pods/p/volumes/x', 'tmpfs'),
    line('/repo/.cache/kubelet/containerd/state/with\\040space/rootfs', 'overlay'),
    line('/repo/.cache/kubelet-other/x', 'tmpfs'),
    line('/repo/.cache/kubelet/kubelet/root', 'ext4'),
  ].join('\n');

  it('lists the mount points inside the directory once each, a mount inside another before it, escapes decoded', () => {
    const points = mountsUnder('/repo/.cache/kubelet', mountinfo);
    assert.deepEqual([...points].sort(), [
      '/repo/.cache/kubelet/containerd/state/with space/rootfs',
      '/repo/.cache/kubelet/kubelet/root',
      '/repo/.cache/kubelet/kubelet/root/pods/p/volumes/x',
    ]);
    assert.ok(points.indexOf('/repo/.cache/kubelet/kubelet/root/pods/p/volumes/x') < points.indexOf('/repo/.cache/kubelet/kubelet/root'));
  });
});
