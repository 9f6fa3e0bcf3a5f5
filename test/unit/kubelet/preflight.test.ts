// Where `make test-kubelet` cannot run, it skips with one line and exit status 0.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cannotRun, type Host } from '../../kubelet/preflight.ts';

const filesystems = 'nodev\tsysfs\nnodev\tproc\n\text4\nnodev\toverlay\n';

describe('whether this machine can run a node', () => {
  const cases: { name: string; host: Host; reason: string | undefined }[] = [
    { name: 'root on Linux with overlayfs runs', host: { platform: 'linux', uid: 0, filesystems }, reason: undefined },
    {
      name: 'root on Linux runs when overlay is the last line and has no newline',
      host: { platform: 'linux', uid: 0, filesystems: 'nodev\tproc\nnodev\toverlay' },
      reason: undefined,
    },
    {
      name: 'a user who is not root skips',
      host: { platform: 'linux', uid: 1000, filesystems },
      reason: 'not root (the kubelet, containerd and runc need root)',
    },
    { name: 'macOS skips, root or not', host: { platform: 'darwin', uid: 0, filesystems: undefined }, reason: 'the kubelet and containerd need Linux' },
    {
      name: 'Windows, which has no user id, skips',
      host: { platform: 'win32', uid: undefined, filesystems: undefined },
      reason: 'the kubelet and containerd need Linux',
    },
    {
      name: 'a kernel without overlayfs skips',
      host: { platform: 'linux', uid: 0, filesystems: 'nodev\tproc\n\text4\nnodev\toverlayfs-not\n' },
      reason: 'no overlay filesystem for containerd',
    },
    {
      name: 'an unreadable /proc/filesystems skips',
      host: { platform: 'linux', uid: 0, filesystems: undefined },
      reason: 'no overlay filesystem for containerd',
    },
  ];
  for (const { name, host, reason } of cases) {
    it(name, () => assert.equal(cannotRun(host), reason));
  }
});

/** Whether a user who is neither owner nor group may enter the directory and every one above it. */
const othersMayEnter = (dir: string): boolean => (statSync(dir).mode & 0o001) !== 0 && (dir === dirname(dir) || othersMayEnter(dirname(dir)));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const nobody = { uid: 65534, gid: 65534 };
const asRoot = process.getuid?.() === 0;
const node = realpathSync(process.execPath);

describe('make test-kubelet as a user who is not root', () => {
  const skip =
    process.platform !== 'linux'
      ? 'the not-root path is the Linux one'
      : asRoot && !(othersMayEnter(repoRoot) && othersMayEnter(dirname(node)))
        ? 'UID 65534 cannot enter the checkout or reach node'
        : false;
  it(
    'prints one line saying why it skipped and exits 0, before installing, sweeping or building anything (each of which logs to stderr)',
    { skip },
    async () => {
      const child = spawn(node, ['--disable-warning=ExperimentalWarning', join('test', 'kubelet', 'run.ts')], {
        cwd: repoRoot,
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: '/nonexistent' },
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(asRoot ? nobody : {}),
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(code, 0, stderr);
      assert.equal(stdout, 'test-kubelet: skipped: not root (the kubelet, containerd and runc need root)\n');
      assert.equal(stderr, '');
    },
  );
});
