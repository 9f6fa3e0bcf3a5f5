// Images packed here: what a registry and `ctr images import` read from them.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { buildImage, digestOf, mediaTypes, ociLayoutTar, tarOf } from '../../kubelet/oci.ts';

const binary = Buffer.from('\u007fELF not really, but bytes all the same\n');

describe('OCI images', () => {
  it('writes tar archives that tar itself reads back, modes and contents intact', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-oci-'));
    try {
      writeFileSync(
        join(dir, 'a.tar'),
        tarOf([
          { path: 'app', mode: 0o755, data: binary },
          { path: 'blobs/sha256/x', mode: 0o644, data: Buffer.alloc(513, 1) },
        ]),
      );
      const listing = execFileSync('tar', ['-tvf', join(dir, 'a.tar')], { encoding: 'utf8' });
      assert.match(listing, /^-rwxr-xr-x .* app$/m);
      assert.match(listing, /^-rw-r--r-- .* 513 .* blobs\/sha256\/x$/m);
      execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir]);
      assert.deepEqual(readFileSync(join(dir, 'app')), binary);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes a one-layer image whose manifest, config and layer name each other by digest', () => {
    const image = buildImage({ binary, name: 'app', architecture: 'amd64', env: ['A=1'] });
    assert.equal(image.manifestDigest, digestOf(image.manifest));
    const manifest = JSON.parse(image.manifest.toString('utf8')) as {
      mediaType: string;
      config: { digest: string; size: number };
      layers: { mediaType: string; digest: string }[];
    };
    assert.equal(manifest.mediaType, mediaTypes.manifest);
    const config = image.blobs.get(manifest.config.digest);
    const layer = image.blobs.get(manifest.layers[0]!.digest);
    assert.ok(config && layer);
    assert.equal(manifest.config.size, config.length);
    const parsed = JSON.parse(config.toString('utf8')) as {
      architecture: string;
      os: string;
      config: { Entrypoint: string[]; Env: string[] };
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual([parsed.architecture, parsed.os, parsed.config.Entrypoint], ['amd64', 'linux', ['/app']]);
    assert.ok(parsed.config.Env.includes('A=1'));
    assert.deepEqual(parsed.rootfs.diff_ids, [digestOf(gunzipSync(layer))], 'the diff id is the digest of the uncompressed layer');
  });

  it('writes an OCI layout naming the image for ctr images import', () => {
    const image = buildImage({ binary, name: 'pause', architecture: 'amd64' });
    const dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-oci-'));
    try {
      writeFileSync(join(dir, 'layout.tar'), ociLayoutTar(image, 'kube-ecrlogin.test/pause:1', 'amd64'));
      execFileSync('tar', ['-xf', join(dir, 'layout.tar'), '-C', dir]);
      const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
      assert.equal(index.manifests[0]?.digest, image.manifestDigest);
      assert.equal(index.manifests[0]?.annotations['io.containerd.image.name'], 'kube-ecrlogin.test/pause:1');
      for (const digest of [image.manifestDigest, ...image.blobs.keys()]) {
        assert.equal(digestOf(readFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)))), digest);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
