// What the Dockerfile builds, without a container engine: its build stage (`npm run build`, i.e. tsc
// with tsconfig.build.json, then `npm run bundle`, esbuild) and its runtime stage (the bundle and
// package.json, no node_modules) replayed into a temporary directory, then run the way the image runs it:
// `node /app/dist/kube-ecrlogin.mjs`, as UID/GID 65532 (when the tests run as root), with HOME, TMPDIR
// and the working directory not writable. A `once` pass as the manifests' ServiceAccount against the
// control plane and the AWS test server must write the Secret and exit 0, and `run` must become ready,
// serve, and stop on SIGTERM, with nothing but the bundle.

import { spawn } from 'node:child_process';
import { once as eventOf } from 'node:events';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { start, type AwsTestServer } from '../aws/server.ts';
import { buildImageApp, bundlePath, bundleScriptArgs, compileCachePath, dockerfileNodeOptions } from '../bench/image-runtime.ts';
import { freePorts, repoRoot } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { controllerKeys } from '../support/controller.ts';
import { decodeDockerConfig, pullSecretNames, readSecret } from '../support/objects.ts';
import { cleanUp, core, installController, run, runOk, Scratch, type InstalledController } from './support.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const projectNode = realpathSync(join(repoRoot, 'node_modules', '.bin', 'node'));
const runtimeUser = { uid: 65532, gid: 65532 };
const asRoot = process.getuid?.() === 0;

/**
 * A scratch directory the image's user can enter: under the system's temporary directory when every
 * directory above it lets others in, else under /tmp (a checkout or TMPDIR may lie in a private home
 * or a mode-0700 directory, which UID 65532 cannot cross).
 */
function imageScratch(): string {
  const othersMayEnter = (dir: string): boolean => (statSync(dir).mode & 0o001) !== 0 && (dir === dirname(dir) || othersMayEnter(dirname(dir)));
  const base = othersMayEnter(realpathSync(tmpdir())) ? tmpdir() : '/tmp';
  return mkdtempSync(join(base, 'kube-ecrlogin-image-'));
}

describe('the Dockerfile', () => {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  let work: string;
  /** /app of the image. */
  let app: string;
  /** The image's node: the project's Node 24, copied beside /app, out of the checkout. */
  let imageNode: string;

  before(() => {
    work = imageScratch();
    chmodSync(work, 0o755);
    app = join(work, 'app');
    mkdirSync(app);
    imageNode = join(work, 'node');
    copyFileSync(projectNode, imageNode);
    chmodSync(imageNode, 0o755);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('is multi-stage on node:24-slim and runs the bundle as 65532, with no node_modules', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:24-slim$/m);
    assert.deepEqual(dockerfile.match(/^FROM .*$/gm), ['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE}']);
    assert.match(dockerfile, /^RUN npm ci --no-audit --no-fund$/m);
    assert.match(dockerfile, /^RUN npm run build && npm run bundle && chmod \+x dist\/kube-ecrlogin\.mjs$/m);
    assert.match(dockerfile, /^COPY --from=build \/src\/dist\/kube-ecrlogin\.mjs \/src\/dist\/kube-ecrlogin\.mjs\.map \.\/dist\/$/m);
    assert.doesNotMatch(dockerfile, /node_modules \.\/node_modules/);
    assert.match(dockerfile, /^USER 65532:65532$/m);
    // The compile cache: made by the runtime stage's own Node, after NODE_OPTIONS, as the image's user.
    const cache = dockerfile.indexOf(
      `ENV NODE_COMPILE_CACHE=/app/${compileCachePath}\nRUN mkdir /app/${compileCachePath} && chown 65532:65532 /app/${compileCachePath}\nUSER 65532:65532\nRUN node /app/${bundlePath} --version\n`,
    );
    assert.ok(cache > dockerfile.indexOf('NODE_OPTIONS='), 'the compile cache is made after NODE_OPTIONS, as 65532');
    const bundleInImage = `/app/${bundlePath}`.replaceAll('.', '\\.');
    assert.match(dockerfile, new RegExp(`^ENTRYPOINT \\["node", "${bundleInImage}"\\]$`, 'm'));
    assert.match(dockerfile, new RegExp(`ln -s ${bundleInImage} /usr/local/bin/kube-ecrlogin`));
    const ignored = readFileSync(join(repoRoot, '.dockerignore'), 'utf8');
    assert.match(ignored, /^\*$/m, '.dockerignore is an allowlist');
    for (const copied of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
      for (const path of (copied[1] ?? '').split(' '))
        assert.match(ignored, new RegExp(`^!${path.replaceAll('.', '\\.')}/?$`, 'm'), `${path} is in the build context`);
    }
    // The npm scripts the build stage runs are the project's.
    const packageJson = readFileSync(join(repoRoot, 'package.json'), 'utf8');
    const pkg = JSON.parse(packageJson) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts['build'], 'tsc -p tsconfig.build.json');
    const bundle = bundleScriptArgs(packageJson);
    assert.equal(bundle[0], 'src/cli.ts');
    for (const flag of ['--bundle', '--platform=node', '--format=esm', '--target=node24', '--keep-names', '--sourcemap', `--outfile=${bundlePath}`])
      assert.ok(bundle.includes(flag), flag);
  });

  it('build stage: `npm run build` compiles src/ with cli.js; `npm run bundle` makes one file with only production dependencies', async () => {
    // The same compiler and tsconfig as `npm run build`, into a scratch directory instead of the repository.
    const compiled = join(work, 'compiled');
    await runOk(projectNode, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', compiled]);
    assert.match(readFileSync(join(compiled, 'cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.ok(!readdirSync(compiled).some((f) => f.endsWith('.ts')), 'no TypeScript left');

    // `npm run bundle` into the temporary /app, with esbuild's record of what went in.
    const meta = join(work, 'bundle-meta.json');
    const bundle = buildImageApp(app, repoRoot, [`--metafile=${meta}`]);
    chmodSync(bundle, 0o755);
    assert.deepEqual(readdirSync(join(app, 'dist')).sort(), ['kube-ecrlogin.mjs', 'kube-ecrlogin.mjs.map']);
    assert.match(readFileSync(bundle, 'utf8'), /^#!\/usr\/bin\/env node\n/);
    // Every package in the bundle is a production dependency by the lock file; none is dev-only.
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const inputs = Object.keys((JSON.parse(readFileSync(meta, 'utf8')) as { inputs: Record<string, unknown> }).inputs);
    const packages = new Set(
      inputs.filter((input) => input.includes('node_modules/')).map((input) => /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input),
    );
    assert.ok(packages.has('node_modules/@kubernetes/client-node') && packages.has('node_modules/@aws-sdk/client-ecr'), [...packages].join(' '));
    for (const path of packages) {
      assert.ok(lock.packages[path] !== undefined, `${path} is in the lock file`);
      assert.notEqual(lock.packages[path]?.dev, true, `${path} is dev-only`);
    }
    assert.ok(inputs.some((input) => input === 'src/cli.ts'));
    // The image's /app is read-only for its user, and nothing above it holds a node_modules.
    await runOk('chmod', ['-R', 'a+rX,go-w', work]);
    for (let dir = app; dir !== '/'; dir = join(dir, '..')) assert.ok(!existsSync(join(dir, 'node_modules')), `no node_modules in ${dir}`);
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

    /** The image's environment and user (where possible), with `extraEnv`. */
    const imageProcess = (extraEnv: Record<string, string>) => ({
      cwd: readOnly,
      env: {
        PATH: '/usr/bin:/bin',
        NODE_ENV: 'production',
        NODE_OPTIONS: dockerfileNodeOptions(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')).join(' '),
        NODE_COMPILE_CACHE: join(app, compileCachePath),
        HOME: readOnly,
        TMPDIR: readOnly,
        ...extraEnv,
      },
      ...(asRoot ? runtimeUser : {}),
    });

    /** `node /app/dist/kube-ecrlogin.mjs ARGS` run to completion. */
    const image = (args: readonly string[], extraEnv: Record<string, string> = {}) => run(imageNode, [join(app, bundlePath), ...args], imageProcess(extraEnv));

    /** What the Deployment gives the container, against the test control plane and AWS test server. */
    const podEnv = (): Record<string, string> => ({
      KUBECONFIG: kubeconfig,
      POD_NAMESPACE: installed.namespace,
      POD_NAME: 'kube-ecrlogin-image-test',
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    });

    it('runs where it can write nothing: HOME, TMPDIR and the working directory', { skip: asRoot ? false : 'needs root to switch to UID 65532' }, async () => {
      const probe = await run(imageNode, ['-e', 'require("fs").writeFileSync(require("path").join(process.env.HOME, "probe"), "x")'], {
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

    it('loads the bundle from the compile cache its user made at build time, and writes nothing to it', async () => {
      // The runtime stage replayed: an empty directory owned by the image's user, filled by one run as it.
      const cache = join(app, compileCachePath);
      rmSync(cache, { recursive: true, force: true });
      mkdirSync(cache);
      if (asRoot) chownSync(cache, runtimeUser.uid, runtimeUser.gid);
      const made = await image(['--version']);
      assert.equal(made.code, 0, made.stderr);
      const files = (): string[] =>
        readdirSync(cache, { recursive: true, encoding: 'utf8' })
          .map((file) => `${file} ${statSync(join(cache, file)).mtimeMs}`)
          .sort();
      const before = files();
      assert.ok(before.length > 1, before.join(', '));
      const result = await image(['--version'], { NODE_DEBUG_NATIVE: 'COMPILE_CACHE' });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout + result.stderr, /V8 code cache for ESM file:\/\/\S+kube-ecrlogin\.mjs was accepted/);
      assert.deepEqual(files(), before);
    });

    it("runs a `once` pass as the manifests' ServiceAccount: the Secret appears, exit code 0", async () => {
      const tenant = uniqueName('image-tenant');
      created.push({ kind: 'Namespace', name: tenant });
      await core().createNamespace({ body: { metadata: { name: tenant, labels: { [label.key]: label.value }, annotations: { 'ecr-login/server': east } } } });
      const result = await image(['once', '--namespace-selector', `${label.key}=${label.value}`], podEnv());
      assert.equal(result.code, 0, `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
      assert.match(result.stdout + result.stderr, /Pass complete/);
      const secret = await readSecret(tenant, 'ecr-login');
      assert.deepEqual(Object.keys(decodeDockerConfig(secret)), [east]);
      const sa = await core().readNamespacedServiceAccount({ namespace: tenant, name: 'default' });
      assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
      assert.ok(cluster().writes({ user: installed.user, namespace: tenant, resource: 'secrets' }).length > 0, 'written as the ServiceAccount');
    });

    it('`doctor`, as the quick start runs it in the container: healthy once a pass has served the namespace, exit code 0', async () => {
      const tenant = uniqueName('image-doctor');
      created.push({ kind: 'Namespace', name: tenant });
      await core().createNamespace({ body: { metadata: { name: tenant, labels: { [label.key]: label.value }, annotations: { 'ecr-login/server': east } } } });
      // Another controller's tenant, keyless: what it needs is not this controller's concern.
      const other = uniqueName('image-other');
      created.push({ kind: 'Namespace', name: other });
      await core().createNamespace({
        body: {
          metadata: {
            name: other,
            annotations: { 'ecr-login/server': east, 'ecr-login/identity': 'service-account', 'ecr-login/role-arn': 'arn:aws:iam::111122223333:role/other' },
          },
        },
      });
      const pass = await image(['once', '--namespace-selector', `${label.key}=${label.value}`], podEnv());
      assert.equal(pass.code, 0, pass.stderr);
      // The controller's flags (its namespace selector): the doctor checks what that controller needs.
      const result = await image(
        ['doctor', '--namespace', installed.namespace, '--namespace-selector', `${label.key}=${label.value}`, '--aws-retries', '0'],
        podEnv(),
      );
      const output = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
      assert.equal(result.code, 0, output);
      assert.match(result.stdout, /^CHECK +RESULT +DETAIL\n/, output);
      assert.match(result.stdout, new RegExp(`^kubernetes +ok +.* as system:serviceaccount:${installed.namespace}:`, 'm'), output);
      assert.match(result.stdout, /^aws identity +ok +/m, output);
      assert.match(result.stdout, new RegExp(`^Namespace/${tenant} +ecr-login +\\S+ \\(in 1[12]h.*\\) +ok$`, 'm'), output);
      assert.match(result.stdout, /\nhealthy\n$/, output);
    });

    it("`run` becomes ready, serves metrics, writes a new namespace's Secret, and exits 0 on SIGTERM", async () => {
      const tenant = uniqueName('image-run');
      created.push({ kind: 'Namespace', name: tenant });
      const [metricsPort, healthPort] = await freePorts(2);
      const options = imageProcess(podEnv());
      const child = spawn(
        imageNode,
        [
          join(app, bundlePath),
          'run',
          '--namespace-selector',
          `${label.key}=${label.value}`,
          '--metrics-bind-address',
          `127.0.0.1:${String(metricsPort)}`,
          '--health-probe-bind-address',
          `127.0.0.1:${String(healthPort)}`,
        ],
        { ...options, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const exited = eventOf(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      try {
        await eventually('/readyz answers 200', async () => {
          if (child.exitCode !== null) throw new Error(`exited ${String(child.exitCode)}:\n${output}`);
          const response = await fetch(`http://127.0.0.1:${String(healthPort)}/readyz`);
          if (response.status !== 200) throw new Error(`HTTP ${String(response.status)}`);
        });
        await core().createNamespace({ body: { metadata: { name: tenant, labels: { [label.key]: label.value }, annotations: { 'ecr-login/server': east } } } });
        await eventually('the Secret and the ServiceAccount entry', async () => {
          const secret = await readSecret(tenant, 'ecr-login');
          assert.deepEqual(Object.keys(decodeDockerConfig(secret)), [east]);
          const sa = await core().readNamespacedServiceAccount({ namespace: tenant, name: 'default' });
          assert.deepEqual(pullSecretNames(sa), ['ecr-login']);
        });
        const metrics = await (await fetch(`http://127.0.0.1:${String(metricsPort)}/metrics`)).text();
        assert.match(metrics, /^kube_ecrlogin_/m);
      } finally {
        child.kill('SIGTERM');
      }
      const [code, signal] = await exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, output);
    });
  });
});
