// OCI images made here, without any outside registry: one static binary packed as a one-layer image
// (a gzipped tar, an image config, a manifest), served by the ECR-shaped registry or written as an OCI
// image layout tarball for `ctr images import`. Pure, apart from reading the binary.

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export const mediaTypes = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

/** One image: its manifest and every blob it names (config and layer), by digest. */
export interface Image {
  readonly manifest: Buffer;
  readonly manifestDigest: string;
  readonly blobs: ReadonlyMap<string, Buffer>;
}

export interface ImageSpec {
  /** The program, placed at /<name> and run as the entrypoint. */
  readonly binary: Buffer;
  readonly name: string;
  readonly env?: readonly string[];
  /** GOARCH-style: amd64, arm64. */
  readonly architecture: string;
}

export function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** A one-layer image running `/<name>`. */
export function buildImage(spec: ImageSpec): Image {
  const tar = tarOf([{ path: spec.name, mode: 0o755, data: spec.binary }]);
  const layer = gzipSync(tar);
  const config = json({
    architecture: spec.architecture,
    os: 'linux',
    config: { Entrypoint: [`/${spec.name}`], Env: ['PATH=/', ...(spec.env ?? [])] },
    rootfs: { type: 'layers', diff_ids: [digestOf(tar)] },
  });
  const manifest = json({
    schemaVersion: 2,
    mediaType: mediaTypes.manifest,
    config: describe(mediaTypes.config, config),
    layers: [describe(mediaTypes.layer, layer)],
  });
  return {
    manifest,
    manifestDigest: digestOf(manifest),
    blobs: new Map([
      [digestOf(config), config],
      [digestOf(layer), layer],
    ]),
  };
}

/**
 * An OCI image layout as one tar (oci-layout, index.json, blobs/sha256/...), naming the image `ref`
 * through the annotation `ctr images import` reads.
 */
export function ociLayoutTar(image: Image, ref: string, architecture: string): Buffer {
  const index = json({
    schemaVersion: 2,
    mediaType: mediaTypes.index,
    manifests: [
      {
        ...describe(mediaTypes.manifest, image.manifest),
        platform: { architecture, os: 'linux' },
        annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.split(':').at(-1) ?? 'latest' },
      },
    ],
  });
  const blob = (data: Buffer): TarEntry => ({ path: `blobs/sha256/${digestOf(data).slice('sha256:'.length)}`, mode: 0o644, data });
  return tarOf([
    { path: 'oci-layout', mode: 0o644, data: json({ imageLayoutVersion: '1.0.0' }) },
    { path: 'index.json', mode: 0o644, data: index },
    blob(image.manifest),
    ...[...image.blobs.values()].map(blob),
  ]);
}

function describe(mediaType: string, data: Buffer): Descriptor {
  return { mediaType, digest: digestOf(data), size: data.length };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

interface TarEntry {
  readonly path: string;
  readonly mode: number;
  readonly data: Buffer;
}

/** A ustar archive of regular files (parent directories implied), owned by root, dated 0. */
export function tarOf(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    if (Buffer.byteLength(entry.path) > 100) throw new Error(`tar path too long: ${entry.path}`);
    const header = Buffer.alloc(512);
    header.write(entry.path, 0, 100, 'utf8');
    header.write(octal(entry.mode, 8), 100);
    header.write(octal(0, 8), 108);
    header.write(octal(0, 8), 116);
    header.write(octal(entry.data.length, 12), 124);
    header.write(octal(0, 12), 136);
    header.fill(' ', 148, 156);
    header.write('0', 156);
    header.write('ustar\u000000', 257);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(octal(sum, 7), 148);
    parts.push(header, entry.data, Buffer.alloc((512 - (entry.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** A NUL-terminated, zero-padded octal field of `width` bytes. */
function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\u0000';
}
