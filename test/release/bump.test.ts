// make bump (test/release/bump.sh) on a copy of the repository: every copy of the version moves with
// package.json, the changelog opens the version's section, and what it leaves is what make release
// renders once that section is written.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../cluster/controlplane.ts';
import { kustomize, parseManifests, run, runOk } from '../kustomize/support.ts';
import { imagesOf, packageVersion } from './support.ts';

const copied = ['package.json', 'package-lock.json', 'CHANGELOG.md', 'README.md', 'kustomize'];

describe('make bump', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-bump-'));
    for (const path of copied) cpSync(join(repoRoot, path), join(root, path), { recursive: true });
    // What [Unreleased] holds today would become 9.8.7's: the copy starts from an empty one.
    const changelog = join(root, 'CHANGELOG.md');
    writeFileSync(changelog, readFileSync(changelog, 'utf8').replace(/^## \[Unreleased\]\n[\s\S]*?(?=^## \[)/m, '## [Unreleased]\n\n'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const bump = (version: string) => run(join(repoRoot, 'test', 'release', 'bump.sh'), [version], { env: { ...process.env, ROOT: root } });
  const read = (path: string): string => readFileSync(join(root, path), 'utf8');

  it('moves every copy of the version, and opens its changelog section', async () => {
    const result = await bump('v9.8.7');
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(read('package.json')) as { version: string }).version, '9.8.7');
    const lock = JSON.parse(read('package-lock.json')) as { version: string; packages: Record<string, { version?: string }> };
    assert.deepEqual([lock.version, lock.packages['']?.version], ['9.8.7', '9.8.7']);
    const base = await kustomize(join(root, 'kustomize', 'base'));
    for (const object of base) assert.equal(object.metadata.labels?.['app.kubernetes.io/version'], '9.8.7');
    assert.deepEqual(imagesOf(base.find((o) => o.kind === 'Deployment') ?? base[0]!), ['ghcr.io/kube-ecrlogin/kube-ecrlogin:9.8.7']);
    assert.match(read('kustomize/components/cronjob/cronjob.yaml'), /image: ghcr\.io\/kube-ecrlogin\/kube-ecrlogin:9\.8\.7$/m);
    const example = read('kustomize/examples/install/kustomization.yaml');
    assert.doesNotMatch(example, new RegExp(`ref=v${packageVersion.replaceAll('.', '\\.')}\\b`));
    assert.match(example, /newTag: "9\.8\.7"/);
    for (const readme of ['README.md', 'kustomize/README.md'])
      assert.doesNotMatch(
        read(readme),
        new RegExp(`\\?ref=v${packageVersion.replaceAll('.', '\\.')}\\b|releases/download/v${packageVersion.replaceAll('.', '\\.')}/`),
        readme,
      );
    const changelog = read('CHANGELOG.md');
    assert.match(changelog, /^## \[Unreleased\]\n\n## \[9\.8\.7\] - \d{4}-\d{2}-\d{2}\n/m);
    assert.match(changelog, /^\[Unreleased\]: \S+\/compare\/v9\.8\.7\.\.\.HEAD$/m);
    assert.match(changelog, /^\[9\.8\.7\]: \S+\/releases\/tag\/v9\.8\.7$/m);
    assert.match(changelog, new RegExp(`^## \\[${packageVersion.replaceAll('.', '\\.')}\\] - `, 'm'), 'the earlier section stays');
  });

  it('leaves a tree that make release renders once the section says something', async () => {
    const env = { ...process.env, ROOT: root, OUT: join(root, 'dist', 'release'), NOTES: join(root, 'dist', 'notes.md') };
    const empty = await run(join(repoRoot, 'test', 'release', 'render.sh'), ['v9.8.7'], { env });
    assert.match(empty.stderr, /CHANGELOG\.md has no section '## \[9\.8\.7\]'/);
    writeFileSync(join(root, 'CHANGELOG.md'), read('CHANGELOG.md').replace(/(## \[9\.8\.7\] - \S+\n)/, '$1\n### Fixed\n\n- Something.\n'));
    await runOk(join(repoRoot, 'test', 'release', 'render.sh'), ['v9.8.7'], { env });
    const install = parseManifests(read('dist/release/install.yaml'));
    assert.deepEqual(imagesOf(install.find((o) => o.kind === 'Deployment') ?? install[0]!), ['ghcr.io/kube-ecrlogin/kube-ecrlogin:9.8.7']);
    assert.match(read('dist/notes.md'), /^### Fixed$/m);
  });

  it('refuses the version it already has, and a malformed one', async () => {
    assert.match((await bump('v9.8.7')).stderr, /already at 9\.8\.7/);
    assert.match((await bump('9.8.8')).stderr, /VERSION must be vX\.Y\.Z/);
  });
});
