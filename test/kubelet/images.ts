// The suite's images, all from one static program (tiny/main.go, built with the Go toolchain that
// builds Kubernetes): the pause image containerd runs every sandbox from, imported with
// `ctr images import`, and the application images the ECR-shaped registry serves.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, type Image } from './oci.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** The name containerd's sandbox_image gives the pause image. */
export const pauseRef = 'kube-ecrlogin.test/pause:1';

/** GOARCH of this machine. */
export function goArch(): string {
  const arches: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };
  const arch = arches[process.arch];
  if (arch === undefined) throw new Error(`no Go architecture for ${process.arch}`);
  return arch;
}

/** Builds tiny/main.go into dir (once per source), statically, and returns the binary. */
export function tinyBinary(dir: string): Buffer {
  const source = join(here, 'tiny', 'main.go');
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const out = join(dir, `tiny-${hash}`);
  if (!existsSync(out)) {
    mkdirSync(dir, { recursive: true });
    execFileSync('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', out, source], {
      cwd: join(here, 'tiny'),
      env: { ...process.env, CGO_ENABLED: '0', GOARCH: goArch(), GOOS: 'linux' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  return readFileSync(out);
}

export function pauseImage(binary: Buffer): Image {
  return buildImage({ binary, name: 'pause', architecture: goArch(), env: ['TINY_ROLE=pause', `TINY_IMAGE=${pauseRef}`] });
}

/** An application image; `label` makes each image (and so its digest) distinct. */
export function appImage(binary: Buffer, label: string): Image {
  return buildImage({ binary, name: 'app', architecture: goArch(), env: ['TINY_ROLE=app', `TINY_IMAGE=${label}`] });
}
