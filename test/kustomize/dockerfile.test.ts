// What the Dockerfile builds, without a container engine: its build stage (`npm run build`, i.e. tsc
// with tsconfig.build.json) and its runtime stage (dist/, package.json and `npm ci --omit=dev`) replayed
// into a temporary directory, then run the way the image runs it: `node /app/dist/cli.js`, as UID/GID
// 65532 (when the tests run as root), with HOME, TMPDIR and the working directory not writable. A
// `once` pass as the manifests' ServiceAccount against the control plane and the AWS test server must
// write the Secret and exit 0, using only the production node_modules.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start, type AwsTestServer } from '../aws/server.ts';
import { dockerfileNodeOptions } from '../bench/image-runtime.ts';
import { repoRoot } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { decodeDockerConfig, pullSecretNames, readSecret } from '../support/objects.ts';
import { cleanUp, core, installController, run, runOk, Scratch, type InstalledController } from './support.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const projectNode = realpathSync(join(repoRoot, 'node_modules', '.bin', 'node'));
const runtimeUser = { uid: 65532, gid: 65532 };
const asRoot = process.getuid?.() === 0;

describe('the Dockerfile', () => {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  let work: string;
  /** /app of the image. */
  let app: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-image-'));
    app = join(work, 'app');
    mkdirSync(app);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('is multi-stage on node:24-slim and runs dist/cli.js as 65532 with production dependencies only', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:24-slim$/m);
    assert.deepEqual(dockerfile.match(/^FROM .*$/gm), ['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS deps', 'FROM ${NODE_IMAGE}']);
    assert.match(dockerfile, /^RUN npm ci --no-audit --no-fund$/m);
    assert.match(dockerfile, /^RUN npm run build && chmod \+x dist\/cli\.js$/m);
    assert.match(dockerfile, /^RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund$/m);
    assert.match(dockerfile, /^COPY --from=deps \/app\/node_modules \.\/node_modules$/m);
    assert.match(dockerfile, /^COPY --from=build \/src\/dist \.\/dist$/m);
    assert.match(dockerfile, /^USER 65532:65532$/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "\/app\/dist\/cli\.js"\]$/m);
    const ignored = readFileSync(join(repoRoot, '.dockerignore'), 'utf8');
    assert.match(ignored, /^\*$/m, '.dockerignore is an allowlist');
    for (const copied of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const path of (copied[1] ?? '').split(' ')) assert.match(ignored, new RegExp(`^!${path.replaceAll('.', '\\.')}/?$`, 'm'), `${path} is in the build context`);
    }
    // The npm scripts the build stage runs are the project's.
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts['build'], 'tsc -p tsconfig.build.json');
  });

  it('build stage: `npm run build` compiles src/ into dist/ with cli.js', async () => {
    // The same compiler and tsconfig as `npm run build`, into the temporary /app instead of the repository.
    await runOk(projectNode, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', join(app, 'dist')]);
    chmodSync(join(app, 'dist', 'cli.js'), 0o755);
    assert.match(readFileSync(join(app, 'dist', 'cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.ok(!readdirSync(join(app, 'dist')).some((f) => f.endsWith('.ts')), 'no TypeScript left');
  });

  it('runtime stage: `npm ci --omit=dev` installs the production dependencies and nothing else', async () => {
    for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(repoRoot, file), join(app, file));
    await runOk('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app });
    // What npm's lockfile marks dev-only is absent; everything production needs is present.
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
    };
    let devOnly = 0;
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path === '') continue;
      if (entry.dev === true) {
        devOnly++;
        assert.ok(!existsSync(join(app, path)), `${path} is dev-only`);
      } else if (entry.optional !== true && entry.devOptional !== true) {
        assert.ok(existsSync(join(app, path)), `${path} is needed in production`);
      }
    }
    assert.ok(devOnly > 0);
    for (const tool of ['typescript', 'eslint', 'node']) assert.ok(!existsSync(join(app, 'node_modules', tool)), tool);
    // The image's /app is read-only for its user.
    await runOk('chmod', ['-R', 'a+rX,go-w', work]);
  });

  describe('the image, run', () => {
    let aws: AwsTestServer;
    let scratch: Scratch;
    let installed: InstalledController;
    let readOnly: string;
    let kubeconfig: string;
    const created: { kind: string; name: string }[] = [];
    const label = { key: 'kube-ecrlogin.test/run', value: uniqueName('image') };

    before(async () => {
      aws = await start();
      aws.addUser(controllerKeys);
      scratch = new Scratch();
      installed = await installController(scratch, { namespace: label.value, suffix: label.value });
      created.push(...installed.created);
      readOnly = join(work, 'read-only');
      mkdirSync(readOnly);
      kubeconfig = join(work, 'kubeconfig');
      writeFileSync(kubeconfig, installed.kubeConfig.exportConfig());
      chmodSync(readOnly, 0o555);
      chmodSync(kubeconfig, 0o444);
    });

    after(async () => {
      await aws.close();
      scratch.remove();
      await cleanUp(created);
    });

    /** `node /app/dist/cli.js ARGS` with the image's environment, as its user where possible. */
    const image = (args: readonly string[], extraEnv: Record<string, string> = {}) =>
      run(projectNode, [join(app, 'dist', 'cli.js'), ...args], {
        cwd: readOnly,
        env: {
          PATH: '/usr/bin:/bin',
          NODE_ENV: 'production',
          NODE_OPTIONS: dockerfileNodeOptions(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')).join(' '),
          HOME: readOnly,
          TMPDIR: readOnly,
          ...extraEnv,
        },
        ...(asRoot ? runtimeUser : {}),
      });

    it('runs where it can write nothing: HOME, TMPDIR and the working directory', { skip: asRoot ? false : 'needs root to switch to UID 65532' }, async () => {
      const probe = await run(projectNode, ['-e', 'require("fs").writeFileSync(require("path").join(process.env.HOME, "probe"), "x")'], {
        cwd: readOnly,
        env: { HOME: readOnly },
        ...runtimeUser,
      });
      assert.notEqual(probe.code, 0);
      assert.match(probe.stderr, /EACCES/);
    });

    it('prints its version', async () => {
      const result = await image(['--version']);
      assert.equal(result.code, 0, result.stderr);
      const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
      assert.equal(result.stdout, `kube-ecrlogin ${pkg.version}\n`);
    });

    it('runs a `once` pass as the manifests\' ServiceAccount: the Secret appears, exit code 0', async () => {
      const tenant = uniqueName('image-tenant');
      created.push({ kind: 'Namespace', name: tenant });
      await core().createNamespace({ body: { metadata: { name: tenant, labels: { [label.key]: label.value }, annotations: { 'ecr-login/server': east } } } });
      const result = await image(['once', '--namespace-selector', `${label.key}=${label.value}`], {
        KUBECONFIG: kubeconfig,
        POD_NAMESPACE: installed.namespace,
        POD_NAME: 'kube-ecrlogin-image-test',
        AWS_ENDPOINT_URL: aws.endpoint,
        AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
        AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
        AWS_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
      assert.match(result.stdout + result.stderr, /Pass complete/);
      const secret = await readSecret(tenant, 'ecr-login');
      assert.deepEqual(Object.keys(decodeDockerConfig(secret)), [east]);
      const sa = await core().readNamespacedServiceAccount({ namespace: tenant, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
      assert.ok(cluster().writes({ user: installed.user, namespace: tenant, resource: 'secrets' }).length > 0, 'written as the ServiceAccount');
    });
  });
});
