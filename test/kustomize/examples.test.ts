// kustomize/examples/install, the kustomization a user copies into a GitOps repository instead of
// forking: built with its remote bases replaced by this checkout (as validate.sh builds it), it is the
// default overlay with the user's image and role ARN, and the real API server accepts it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { uniqueName } from '../support/cluster.ts';
import { repoRoot } from '../cluster/controlplane.ts';
import { packageVersion } from '../release/support.ts';
import { apply, cleanUp, containerOf, createNamespace, find, kustomize, kustomizeRoot, run, Scratch, type Manifest } from './support.ts';

const examplePath = join(kustomizeRoot, 'examples', 'install', 'kustomization.yaml');
const remote = /^https:\/\/github\.com\/kube-ecrlogin\/kube-ecrlogin\/\/kustomize\/([^?]+)\?ref=(v\S+)$/;

/** The example with its remote bases replaced by kustomize/ of this checkout, and `edit` applied. */
function local(scratch: Scratch, name: string, edit: (kustomization: Record<string, unknown>) => void = () => undefined): string {
  const example = parse(readFileSync(examplePath, 'utf8')) as Record<string, unknown>;
  const localize = (entries: unknown): unknown[] =>
    (entries as string[]).map((entry) => {
      const match = remote.exec(entry);
      assert.ok(match, `${entry} refers to a release tag of this repository`);
      return `kustomize/${match[1] ?? ''}`;
    });
  example['resources'] = localize(example['resources']);
  example['components'] = localize(example['components']);
  edit(example);
  return scratch.kustomization(name, example);
}

describe('kustomize/examples/install', () => {
  let scratch: Scratch;
  before(() => {
    scratch = new Scratch();
  });
  after(() => scratch.remove());

  it('refers to this release by tag, every base and component', () => {
    const example = parse(readFileSync(examplePath, 'utf8')) as { resources: string[]; components: string[]; images: { newTag: string }[] };
    for (const entry of [...example.resources, ...example.components]) assert.equal(remote.exec(entry)?.[2], `v${packageVersion}`, entry);
    // The commented optional components too.
    for (const line of readFileSync(examplePath, 'utf8')
      .split('\n')
      .filter((l) => /^\s*# - https:/.test(l))) {
      assert.equal(remote.exec(line.replace(/^\s*# - /, ''))?.[2], `v${packageVersion}`, line);
    }
    assert.equal(example.images[0]?.newTag, packageVersion);
  });

  it('is the default overlay, built against this checkout', async () => {
    const objects = await kustomize(local(scratch, 'example'));
    const overlay = await kustomize(join(kustomizeRoot, 'overlays', 'default'));
    const names = (list: readonly Manifest[]): string[] => list.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    assert.deepEqual(names(objects), names(overlay));
    assert.equal(containerOf(find(objects, 'Deployment')).image, `ghcr.io/kube-ecrlogin/kube-ecrlogin:${packageVersion}`);
    const validate = await run(join(repoRoot, 'test', 'kustomize', 'validate.sh'), []);
    assert.match(validate.stdout, /^ok +kustomize\/examples\/install$/m);
  });

  it("takes the user's image and role ARN, and the optional components", async () => {
    const role = 'arn:aws:iam::444455556666:role/platform-ecr-pull';
    const objects = await kustomize(
      local(scratch, 'example-edited', (k) => {
        const [image] = k['images'] as { newName: string }[];
        const [patch] = k['patches'] as { patch: string }[];
        assert.ok(image !== undefined && patch !== undefined);
        image.newName = 'registry.example.com/mirror/kube-ecrlogin';
        patch.patch = patch.patch.replace('arn:aws:iam::111122223333:role/kube-ecrlogin', role);
        (k['components'] as string[]).push('kustomize/components/high-availability', 'kustomize/components/prometheus');
      }),
    );
    assert.equal(containerOf(find(objects, 'Deployment')).image, `registry.example.com/mirror/kube-ecrlogin:${packageVersion}`);
    assert.equal(find(objects, 'ServiceAccount').metadata.annotations?.['eks.amazonaws.com/role-arn'], role);
    assert.equal((find(objects, 'Deployment')['spec'] as { replicas: number }).replicas, 2);
    find(objects, 'ServiceMonitor');
  });

  it('is accepted by the API server (server-side dry run, in a test namespace)', async () => {
    const namespace = await createNamespace(uniqueName('example'));
    try {
      const dir = local(scratch, 'example-dry', (k) => {
        k['namespace'] = namespace;
      });
      const objects = await kustomize(dir);
      const { stdout, stderr } = await apply(objects, { dryRun: true });
      for (const object of objects) assert.match(stdout, new RegExp(`/${object.metadata.name} serverside-applied \\(server dry run\\)`));
      assert.equal(stderr, '');
    } finally {
      await cleanUp([{ kind: 'Namespace', name: namespace }]);
    }
  });
});
