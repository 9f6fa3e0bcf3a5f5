// `make release`: test/release/render.sh renders exactly the files the release workflow attaches, with the
// image pinned to the version (and to the digest, when the workflow passes one) and the label
// app.kubernetes.io/version on every object and Pod template, and each file is accepted by the real
// API server (a server-side dry-run apply, moved into a test namespace as a user would wrap it).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cluster, uniqueName } from '../support/cluster.ts';
import { repoRoot } from '../cluster/controlplane.ts';
import { apply, cleanUp, createNamespace, installCrds, parseManifests, run, Scratch, type Manifest } from '../kustomize/support.ts';
import { imagesOf, packageVersion, podTemplateLabels, renderedInNamespace, renderRelease, type Rendered } from './support.ts';

const tag = `v${packageVersion}`;
const components = readdirSync(join(repoRoot, 'kustomize', 'components'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
/** Components whose API needs a newer Kubernetes than the oldest tested (as test/kustomize/apply.test.ts). */
const minimumMinor: Readonly<Record<string, string>> = { 'component-admission-policy.yaml': '1.36' };
/** API groups whose CRDs the test API server does not have (no cert-manager here): rendered, not applied. */
const absentGroups = ['cert-manager.io/'];

function checkVersioned(file: string, objects: readonly Manifest[], image: string): void {
  assert.ok(objects.length > 0, `${file} holds objects`);
  let workloads = 0;
  for (const object of objects) {
    const what = `${file}: ${object.kind}/${object.metadata.name}`;
    assert.equal(object.metadata.labels?.['app.kubernetes.io/version'], packageVersion, `${what} is labelled with the version`);
    const template = podTemplateLabels(object);
    if (template !== undefined) {
      workloads++;
      assert.equal(template['app.kubernetes.io/version'], packageVersion, `${what}: its Pod template is labelled with the version`);
      const images = imagesOf(object);
      assert.ok(images.length > 0);
      for (const found of images) assert.equal(found, image, `${what} runs ${image}`);
    }
  }
  assert.equal(workloads, 1, `${file} runs the controller once (a Deployment or a CronJob)`);
}

describe('make release', () => {
  let rendered: Rendered;

  before(async () => {
    rendered = await renderRelease(tag);
  });
  after(() => rendered.remove());

  it('renders install.yaml, install-seed-compatible.yaml and one file per component, nothing else', () => {
    assert.deepEqual([...rendered.files.keys()], [...components.map((c) => `component-${c}.yaml`), 'install-seed-compatible.yaml', 'install.yaml'].sort());
  });

  it('pins the image to the version and labels every object and Pod template with it', () => {
    for (const [file, text] of rendered.files) {
      assert.match(text, new RegExp(`^# kube-ecrlogin ${tag}: `), `${file} says what it is`);
      checkVersioned(file, parseManifests(text), `ghcr.io/kube-ecrlogin/kube-ecrlogin:${packageVersion}`);
    }
  });

  it('install.yaml is the default overlay; a component file is the base with that component', () => {
    const kinds = (file: string): string[] => parseManifests(rendered.files.get(file) ?? '').map((o) => `${o.kind}/${o.metadata.name}`);
    assert.ok(kinds('install.yaml').includes('ValidatingAdmissionPolicy/kube-ecrlogin-writes'), 'guard-rails, as overlays/default');
    const sa = parseManifests(rendered.files.get('install.yaml') ?? '').find((o) => o.kind === 'ServiceAccount');
    assert.equal(
      sa?.metadata.annotations?.['eks.amazonaws.com/role-arn'],
      'arn:aws:iam::111122223333:role/kube-ecrlogin',
      'the placeholder role, refused at run time',
    );
    assert.ok(kinds('install-seed-compatible.yaml').includes('CronJob/kube-ecrlogin'));
    assert.ok(kinds('component-prometheus.yaml').includes('ServiceMonitor/kube-ecrlogin'));
    assert.ok(kinds('component-prometheus.yaml').includes('Deployment/kube-ecrlogin'), 'over the base: a whole install');
  });

  it("pins the digest as well when the workflow passes one, under the workflow's image name", async () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const pinned = await renderRelease(tag, { IMAGE_REPO: 'ghcr.io/example-owner/kube-ecrlogin', IMAGE_DIGEST: digest });
    try {
      for (const [file, text] of pinned.files) checkVersioned(file, parseManifests(text), `ghcr.io/example-owner/kube-ecrlogin:${packageVersion}@${digest}`);
    } finally {
      pinned.remove();
    }
  });

  it("writes the changelog's section of the version as the release's text", () => {
    const changelog = readFileSync(join(repoRoot, 'CHANGELOG.md'), 'utf8');
    const start = changelog.indexOf(`## [${packageVersion}]`);
    assert.ok(start >= 0);
    const end = changelog.indexOf('\n## [', start + 1);
    const section = changelog.slice(changelog.indexOf('\n', start) + 1, end).trim();
    assert.equal(rendered.notes.trim(), section);
    assert.match(rendered.notes, /^### Added$/m);
  });

  it('refuses a version other than package.json, a malformed one, and a bad image name', async () => {
    const script = join(repoRoot, 'test', 'release', 'render.sh');
    const env = { ...process.env, OUT: join(rendered.dir, 'refused'), NOTES: join(rendered.dir, 'refused.md') };
    const other = await run(script, ['v99.0.0'], { env });
    assert.equal(other.code, 1);
    assert.match(other.stderr, /not package\.json's version/);
    const bare = await run(script, [packageVersion], { env });
    assert.match(bare.stderr, /VERSION must be vX\.Y\.Z/);
    const upper = await run(script, [tag], { env: { ...env, IMAGE_REPO: 'ghcr.io/Owner/kube-ecrlogin' } });
    assert.match(upper.stderr, /lower-case image name/);
  });

  it('the release workflow attaches exactly these files and uses this script', () => {
    const workflow = readFileSync(join(repoRoot, '.github', 'workflows', 'release.yaml'), 'utf8');
    assert.match(workflow, /make release VERSION="\$\{GITHUB_REF_NAME\}"/);
    assert.match(workflow, /gh release create "\$\{GITHUB_REF_NAME\}" dist\/release\/\*\.yaml --notes-file dist\/release-notes\.md/);
  });

  describe('on the API server (server-side dry run)', () => {
    let scratch: Scratch;
    let namespace: string;

    before(async () => {
      scratch = new Scratch('kube-ecrlogin-release-');
      await installCrds();
      namespace = await createNamespace(uniqueName('release'));
    });
    after(async () => {
      scratch.remove();
      await cleanUp([{ kind: 'Namespace', name: namespace }]);
    });

    const dryRun = async (objects: readonly Manifest[], options: { namespace?: string } = {}): Promise<void> => {
      const { stdout, stderr } = await apply(objects, { dryRun: true, ...options });
      for (const object of objects) assert.match(stdout, new RegExp(`/${object.metadata.name} serverside-applied \\(server dry run\\)`));
      assert.equal(stderr, '', 'no warnings');
    };

    for (const file of ['install.yaml', ...components.map((c) => `component-${c}.yaml`)]) {
      const needs = minimumMinor[file];
      it(`${file}${needs !== undefined ? ` (or, before Kubernetes ${needs}, refused naming the missing kind)` : ''}`, async () => {
        const all = await renderedInNamespace(scratch, file.replace('.yaml', ''), rendered.files.get(file) ?? '', namespace);
        const objects = all.filter((object) => !absentGroups.some((group) => object.apiVersion.startsWith(group)));
        if (file === 'component-admission-webhook-cert-manager.yaml') {
          assert.deepEqual(
            all
              .filter((object) => !objects.includes(object))
              .map((o) => o.kind)
              .sort(),
            ['Certificate', 'Issuer'],
          );
          assert.ok(
            objects.some((o) => o.kind === 'MutatingWebhookConfiguration'),
            'with admission-webhook, which it needs',
          );
        }
        if (needs !== undefined && cluster().minor < needs) {
          await assert.rejects(dryRun(objects), /no matches for kind "MutatingAdmissionPolicy/);
          return;
        }
        await dryRun(objects);
      });
    }

    it('install-seed-compatible.yaml as it is, with kubectl apply --namespace', async () => {
      const objects = parseManifests(rendered.files.get('install-seed-compatible.yaml') ?? '');
      const { stdout, stderr } = await apply(objects, { dryRun: true, namespace });
      assert.match(stdout, /cronjob.batch\/kube-ecrlogin serverside-applied \(server dry run\)/);
      assert.equal(stderr, '');
    });
  });
});
