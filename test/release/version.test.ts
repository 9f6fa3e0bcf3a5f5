// The version lives in package.json; everything that states it agrees: the command's --version, the
// image label (the Dockerfile's build argument, which `make image` passes), the manifests' image tag
// and app.kubernetes.io/version, the example's release refs, the lockfile and the changelog.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../cluster/controlplane.ts';
import { kustomize, kustomizeRoot, runOk } from '../kustomize/support.ts';
import { imagesOf, packageVersion, podTemplateLabels } from './support.ts';

const read = (path: string): string => readFileSync(join(repoRoot, path), 'utf8');
const node = join(repoRoot, 'node_modules', '.bin', 'node');

describe('the version', () => {
  it('is a semantic version', () => {
    assert.match(packageVersion, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
  });

  it('is what kube-ecrlogin --version and kube-ecrlogin version print', async () => {
    for (const args of [['--version'], ['version']]) {
      const out = await runOk(node, ['--disable-warning=ExperimentalWarning', join(repoRoot, 'src', 'cli.ts'), ...args]);
      assert.equal(out, `kube-ecrlogin ${packageVersion}\n`);
    }
  });

  it('labels the image: the Dockerfile takes it as a build argument, and make image passes it', async () => {
    const dockerfile = read('Dockerfile');
    assert.match(dockerfile, /^ARG VERSION=dev$/m, 'no version written in the Dockerfile itself');
    assert.match(dockerfile, /org\.opencontainers\.image\.version="\$\{VERSION\}"/);
    const image = await runOk('make', ['-s', '-n', 'image'], { cwd: repoRoot });
    assert.match(
      image,
      new RegExp(
        `^docker build --build-arg VERSION=${packageVersion.replaceAll('.', '\\.')} -t ghcr\\.io/kube-ecrlogin/kube-ecrlogin:${packageVersion.replaceAll('.', '\\.')} \\.$`,
        'm',
      ),
    );
    const release = await runOk('make', ['-s', '-n', 'release'], { cwd: repoRoot });
    assert.match(release, new RegExp(`^test/release/render\\.sh v${packageVersion.replaceAll('.', '\\.')}$`, 'm'));
    const workflow = read('.github/workflows/release.yaml');
    assert.match(workflow, /VERSION=\$\{\{ steps\.version\.outputs\.version \}\}/, 'the workflow passes it too');
  });

  it('is the tag of the image and the app.kubernetes.io/version label in the manifests', async () => {
    const objects = [
      ...(await kustomize(join(kustomizeRoot, 'overlays', 'default'))),
      ...(await kustomize(join(kustomizeRoot, 'overlays', 'seed-compatible'))).filter((object) => object.kind === 'CronJob'),
    ];
    let workloads = 0;
    for (const object of objects) {
      const template = podTemplateLabels(object);
      if (template === undefined) {
        // Objects of the base carry the label; a component's own objects get it from `make release`.
        if (object.metadata.labels?.['app.kubernetes.io/version'] !== undefined)
          assert.equal(object.metadata.labels['app.kubernetes.io/version'], packageVersion);
        continue;
      }
      workloads++;
      for (const image of imagesOf(object))
        assert.equal(image, `ghcr.io/kube-ecrlogin/kube-ecrlogin:${packageVersion}`, `${object.kind}/${object.metadata.name}`);
    }
    assert.equal(workloads, 2, 'the Deployment and the CronJob');
    const base = await kustomize(join(kustomizeRoot, 'base'));
    for (const object of base) assert.equal(object.metadata.labels?.['app.kubernetes.io/version'], packageVersion, `${object.kind}/${object.metadata.name}`);
  });

  it('is every release ref and image tag of the install example', () => {
    const example = read('kustomize/examples/install/kustomization.yaml');
    const refs = [...example.matchAll(/\?ref=(\S+)/g)].map((match) => match[1]);
    assert.ok(refs.length >= 2);
    for (const ref of refs) assert.equal(ref, `v${packageVersion}`);
    assert.match(example, new RegExp(`newTag: "${packageVersion.replaceAll('.', '\\.')}"`));
  });

  it('is every release ref of the READMEs: kustomize bases by tag, the release download, the checkout', () => {
    const readmes = ['README.md', 'kustomize/README.md', 'kustomize/components/irsa/README.md', 'kustomize/overlays/seed-compatible/README.md'];
    let seen = 0;
    for (const readme of readmes) {
      const text = read(readme);
      for (const match of text.matchAll(/kube-ecrlogin\/\/kustomize\/[^?\s]+\?ref=(\S+)|releases\/download\/(v[^/\s]+)\/|--branch (v\S+)/g)) {
        seen++;
        assert.equal(match[1] ?? match[2] ?? match[3], `v${packageVersion}`, `${readme}: ${match[0]}`);
      }
    }
    assert.ok(seen >= 6, `found ${String(seen)} refs`);
  });

  it('is the lockfile root package version', () => {
    const lock = JSON.parse(read('package-lock.json')) as { version: string; packages: Record<string, { version?: string }> };
    assert.equal(lock.version, packageVersion);
    assert.equal(lock.packages['']?.version, packageVersion);
  });

  it('has its dated CHANGELOG.md section (Keep a Changelog) with a link', () => {
    const changelog = read('CHANGELOG.md');
    assert.match(changelog, /^## \[Unreleased\]$/m);
    const heading = new RegExp(`^## \\[${packageVersion.replaceAll('.', '\\.')}\\] - (\\d{4}-\\d{2}-\\d{2})$`, 'm').exec(changelog);
    assert.ok(heading, `CHANGELOG.md has "## [${packageVersion}] - YYYY-MM-DD"`);
    assert.ok(!Number.isNaN(Date.parse(heading[1] ?? '')));
    assert.match(changelog, new RegExp(`^\\[${packageVersion.replaceAll('.', '\\.')}\\]: https://\\S+v${packageVersion.replaceAll('.', '\\.')}$`, 'm'));
    // The newest version section comes first, after Unreleased.
    const first = /^## \[(\d[^\]]*)\]/m.exec(changelog);
    assert.equal(first?.[1], packageVersion);
  });
});

describe('the license', () => {
  it('is Apache-2.0 in package.json, the image label, and LICENSE holds its full text', () => {
    assert.equal((JSON.parse(read('package.json')) as { license: string }).license, 'Apache-2.0');
    assert.match(read('Dockerfile'), /org\.opencontainers\.image\.licenses="Apache-2\.0"/);
    const license = read('LICENSE');
    assert.match(license, /^\s+Apache License\n\s+Version 2\.0, January 2004\n\s+http:\/\/www\.apache\.org\/licenses\/\n/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
    assert.match(license, /APPENDIX: How to apply the Apache License to your work\./);
    assert.equal(license.split('\n').length, 203, 'the 202 lines of the official text');
  });
});
