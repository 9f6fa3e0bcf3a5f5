// The `ecr-login/format: argocd-repository` Secret read by Argo CD itself, not by a test of its
// fields: Argo CD's application controller and repo server (v3.6.1, argocd.ts) render a Helm chart
// that helm (the version Argo CD's image ships, argocd/build-helm.sh) pulls over OCI from the
// ECR-shaped registry of test/kubelet, which checks every token against those the AWS test server
// issued (through the token tap) and refuses the rest as ECR does. The only credentials Argo CD has
// are the Secret the real controller (a process, `node src/cli.ts run`) wrote into Argo CD's namespace.
//
// The registry's host is an ECR host (111122223333.dkr.ecr.us-east-1.amazonaws.com), reached on 443
// by name, with TLS verified. Nothing on the machine is changed for it:
// - the name: the repo server runs with HTTPS_PROXY naming a CONNECT proxy on loopback that tunnels
//   `<that host>:443`, and nothing else, to the registry's port (helm honours the variable; the
//   TLS session, SNI and certificate check are end to end, the proxy only stands in for DNS);
// - the CA: a file named by the host in the repo server's ARGOCD_TLS_DATA_PATH, the layout of
//   Argo CD's argocd-tls-certs-cm, from which Argo CD passes `--ca-file` to helm.
//
// In order, because the repo server caches what it rendered and the charts it pulled: without the
// Secret the registry refuses Argo CD (401); with the Secret but its token expired on the registry's
// clock, ECR's 403; with the Secret and a live token the chart is rendered and synced. Each change is
// followed by a hard refresh (what `argocd app get --hard-refresh` does), so that a cached failure is
// not what the next step sees. Last, the same chart named with `repoURL: oci://...`: Argo CD takes it as
// a native OCI source and the template does not match it, so it asks the registry without credentials.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as k8s from '@kubernetes/client-node';
import { defaultUsers, repoRoot, startControlPlane, type ControlPlane } from '../cluster/controlplane.ts';
import { start as startAws, type AwsTestServer } from '../aws/server.ts';
import { Replica } from '../chaos/replicas.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';
import { digestOf, mediaTypes, tarOf, type Image } from '../kubelet/oci.ts';
import { startRegistry, type Registry } from '../kubelet/registry.ts';
import { makeRegistryTls } from '../kubelet/tls.ts';
import { startTokenTap, type TokenTap } from '../kubelet/tokens.ts';
import { argocdCrdFiles, argocdUsers, argocdVersion, ensureArgocdBinaries, redisServer, startArgocd, type Argocd } from './argocd.ts';
import { customObjects, installCrds, kubectlFor } from './cluster.ts';

const here = dirname(fileURLToPath(import.meta.url));
const host = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const repoURL = `${host}/charts`;
const chart = { name: 'hello', version: '0.1.0' } as const;
/** The Secret the controller writes for that host (`<secret-name>-<host with dashes>`). */
const secretName = `ecr-login-${host.replace(/\./g, '-')}`;
const applicationKind = { group: 'argoproj.io', version: 'v1alpha1', plural: 'applications' } as const;
const controllerUser = 'kube-ecrlogin';

interface Application {
  readonly status?: {
    readonly sync?: { readonly status?: string; readonly revision?: string };
    readonly health?: { readonly status?: string };
    readonly operationState?: { readonly phase?: string; readonly message?: string };
    readonly conditions?: readonly { readonly type: string; readonly message?: string; readonly lastTransitionTime?: string }[];
  };
}

/** Builds (or finds in the cache) helm and returns the path of the binary. */
function ensureHelm(): string {
  const out = execFileSync(join(here, 'argocd', 'build-helm.sh'), [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return join(out.trim().split('\n').at(-1) ?? '', 'helm');
}

/** A Helm chart as an OCI artifact (Helm's config and chart-content media types), as `helm push` makes it. */
function chartArtifact(): Image {
  const files = {
    'Chart.yaml': `apiVersion: v2\nname: ${chart.name}\nversion: ${chart.version}\n`,
    'values.yaml': 'greeting: from the values\n',
    'templates/configmap.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-greeting',
      'data:',
      '  greeting: {{ .Values.greeting | quote }}',
      '  chart: {{ .Chart.Name }}-{{ .Chart.Version }}',
      '',
    ].join('\n'),
  };
  const content = gzipSync(tarOf(Object.entries(files).map(([path, text]) => ({ path: `${chart.name}/${path}`, mode: 0o644, data: Buffer.from(text) }))));
  const config = Buffer.from(JSON.stringify({ apiVersion: 'v2', name: chart.name, version: chart.version }));
  const describe = (mediaType: string, data: Buffer): { mediaType: string; digest: string; size: number } => ({
    mediaType,
    digest: digestOf(data),
    size: data.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: mediaTypes.manifest,
      config: describe('application/vnd.cncf.helm.config.v1+json', config),
      layers: [describe('application/vnd.cncf.helm.chart.content.v1.tar+gzip', content)],
    }),
  );
  return {
    manifest,
    manifestDigest: digestOf(manifest),
    blobs: new Map([
      [digestOf(config), config],
      [digestOf(content), content],
    ]),
  };
}

interface ConnectProxy {
  readonly url: string;
  /** Every CONNECT target asked for, in order. */
  readonly targets: readonly string[];
  close(): Promise<void>;
}

/** An HTTP CONNECT proxy on loopback that tunnels `<host>:443` to the registry's port and refuses any other target. */
async function startConnectProxy(registryPort: number): Promise<ConnectProxy> {
  const targets: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    targets.push(req.url ?? '');
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (req.url !== `${host}:443`) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(registryPort, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    targets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// Redis comes from Debian (make argocd installs it as root); without it the suite says so and skips.
const skip = redisServer() === undefined ? 'redis-server is not installed (test/gitops/argocd/install-redis.sh, as root)' : false;

describe(`Argo CD ${argocdVersion()} pulls a Helm chart from an ECR-shaped registry with the argocd-repository Secret, and only with it`, { skip }, () => {
  let dir: string;
  let plane: ControlPlane;
  let core: k8s.CoreV1Api;
  let argocd: Argocd;
  let aws: AwsTestServer;
  let tap: TokenTap;
  let registry: Registry;
  let proxy: ConnectProxy;
  let controller: Replica | undefined;
  /** Added to the registry's clock: a token expires on it while the controller's clock stays put. */
  let registryClockOffsetMs = 0;

  before(async () => {
    const bin = ensureArgocdBinaries();
    const helm = ensureHelm();
    dir = `${process.env['KUBE_ECRLOGIN_CLUSTER_DIR'] ?? join(repoRoot, '.cache', 'test', 'cluster')}-gitops-argocd-repository`;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    plane = await startControlPlane({ dir: join(dir, 'cluster'), users: [...defaultUsers, ...argocdUsers] });
    core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
    await installCrds(kubectlFor(plane, dir), argocdCrdFiles(), 'argocd-install');

    aws = await startAws();
    aws.addUser(controllerKeys);
    tap = await startTokenTap(aws.endpoint);
    const tls = makeRegistryTls(join(dir, 'pki'), [host]);
    registry = await startRegistry({ cert: tls.cert, key: tls.key, tokens: tap.book, port: 0, now: () => Date.now() + registryClockOffsetMs });
    registry.push(host, `charts/${chart.name}`, chart.version, chartArtifact());
    proxy = await startConnectProxy(registry.port);

    // helm on the repo server's PATH (its bin/ comes first), and the registry's CA where Argo CD
    // looks for a host's certificates (argocd-tls-certs-cm, mounted at ARGOCD_TLS_DATA_PATH).
    const argocdDir = join(dir, 'argocd');
    mkdirSync(join(argocdDir, 'bin'), { recursive: true });
    symlinkSync(helm, join(argocdDir, 'bin', 'helm'));
    mkdirSync(join(argocdDir, 'config', 'tls'), { recursive: true });
    writeFileSync(join(argocdDir, 'config', 'tls', host), tls.ca);
    argocd = await startArgocd({ plane, dir: argocdDir, namespace: 'argocd', bin, resyncSeconds: 5, repoServerEnv: { HTTPS_PROXY: proxy.url } });

    // The controller, as a process, with a user of its own (cluster-admin here: the RBAC is not what this suite is about).
    await plane
      .adminConfig()
      .makeApiClient(k8s.RbacAuthorizationV1Api)
      .createClusterRoleBinding({
        body: {
          metadata: { name: 'kube-ecrlogin-test' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: controllerUser }],
        },
      });
    await core.createNamespace({ body: { metadata: { name: 'kube-ecrlogin' } } });
    const kubeconfig = plane.writeKubeconfig(plane.userConfig(controllerUser), join(dir, 'controller.kubeconfig'));
    controller = new Replica({
      name: 'kube-ecrlogin-local',
      args: ['--metrics-bind-address=0', '--health-probe-bind-address=0'],
      env: {
        KUBECONFIG: kubeconfig,
        POD_NAMESPACE: 'kube-ecrlogin',
        AWS_ENDPOINT_URL: tap.endpoint,
        AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
        AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
        AWS_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      logFile: join(dir, 'controller.log'),
    });
    controller.start();

    await customObjects(plane).createNamespacedCustomObject({
      ...applicationKind,
      namespace: 'argocd',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: chart.name, namespace: 'argocd' },
        spec: {
          project: 'default',
          // As in src/README.md: the registry and path without a scheme, a Helm OCI repository.
          source: { repoURL, chart: chart.name, targetRevision: chart.version },
          destination: { server: 'https://kubernetes.default.svc', namespace: 'hello' },
          syncPolicy: { automated: {}, syncOptions: ['CreateNamespace=true'] },
        },
      },
    });
  });

  after(async () => {
    await controller?.stop();
    await argocd?.stop();
    await proxy?.close();
    await registry?.close();
    await tap?.close();
    await aws?.close();
    await plane?.stop();
  });

  const readApp = async (): Promise<Application> =>
    (await customObjects(plane).getNamespacedCustomObject({ ...applicationKind, namespace: 'argocd', name: chart.name })) as Application;
  const comparisonError = (app: Application): string => app.status?.conditions?.find((c) => c.type === 'ComparisonError')?.message ?? '';
  const hardRefresh = async (): Promise<void> => {
    await customObjects(plane).patchNamespacedCustomObject(
      { ...applicationKind, namespace: 'argocd', name: chart.name, body: { metadata: { annotations: { 'argocd.argoproj.io/refresh': 'hard' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  };
  const requestsSince = (index: number): string[] =>
    registry.requests.slice(index).map((r) => `${r.method} ${r.path} ${r.user ?? '-'} ${r.outcome} ${r.status}`);
  const repoServerLog = (): string => readFileSync(argocd.logs['repo-server'], 'utf8');

  it('without the Secret, the registry refuses Argo CD: 401, and the Application reports it', async () => {
    const secrets = await core.listNamespacedSecret({ namespace: 'argocd', labelSelector: 'argocd.argoproj.io/secret-type' });
    assert.deepEqual(
      secrets.items.map((s) => s.metadata?.name),
      [],
      "no repository Secret in Argo CD's namespace",
    );
    const app = await eventually(
      'a ComparisonError',
      async () => {
        const read = await readApp();
        // helm (oras) answers the registry's 401 Basic challenge, having no credentials, with this.
        assert.match(comparisonError(read), /helm pull oci:\/\/111122223333\.dkr\.ecr\.us-east-1\.amazonaws\.com\/charts\/hello .*basic credential not found/);
        return read;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    process.stderr.write(`argocd-repository: without the Secret: ${comparisonError(app)}\n`);
    const seen = requestsSince(0);
    assert.ok(
      registry.requests.some((r) => r.host === host && r.outcome === 'anonymous' && r.status === 401),
      seen.join('\n'),
    );
    assert.ok(!registry.requests.some((r) => r.outcome === 'ok' && r.kind !== undefined), `nothing served: ${seen.join('\n')}`);
    assert.ok(proxy.targets.length > 0 && proxy.targets.every((t) => t === `${host}:443`), `helm asked for the ECR host by name: ${proxy.targets.join(', ')}`);
  });

  it("with the Secret the controller wrote but its token expired on the registry's clock: ECR's 403, and the Application reports it", async () => {
    registryClockOffsetMs = 13 * 3600_000;
    await core.patchNamespace(
      { name: 'argocd', body: { metadata: { annotations: { 'ecr-login/server': host, 'ecr-login/format': 'argocd-repository' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const secret = await eventually('the argocd-repository Secret', () => core.readNamespacedSecret({ namespace: 'argocd', name: secretName }), {
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    assert.equal(secret.metadata?.labels?.['argocd.argoproj.io/secret-type'], 'repo-creds');
    const from = registry.requests.length;
    await hardRefresh();
    const app = await eventually(
      'the expired token refused',
      async () => {
        assert.ok(
          registry.requests.slice(from).some((r) => r.user === 'AWS' && r.outcome === 'expired' && r.status === 403),
          requestsSince(from).join('\n'),
        );
        const read = await readApp();
        assert.match(
          comparisonError(read),
          /helm registry login 111122223333\.dkr\.ecr\.us-east-1\.amazonaws\.com .*response status code 403: denied: Your authorization token has expired/,
        );
        return read;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    process.stderr.write(`argocd-repository: token expired: ${comparisonError(app)}\n`);
    assert.ok(!registry.requests.slice(from).some((r) => r.outcome === 'ok' && r.kind !== undefined), requestsSince(from).join('\n'));
  });

  it('with the Secret and a live token: Argo CD renders the chart pulled from the registry and syncs it', async () => {
    registryClockOffsetMs = 0;
    const from = registry.requests.length;
    await hardRefresh();
    const app = await eventually(
      'the Application Synced and Healthy',
      async () => {
        const read = await readApp();
        const detail = `sync ${read.status?.sync?.status ?? '-'}, health ${read.status?.health?.status ?? '-'}, operation ${read.status?.operationState?.phase ?? '-'} ${read.status?.operationState?.message ?? ''}, conditions ${JSON.stringify(read.status?.conditions ?? [])}`;
        assert.equal(read.status?.sync?.status, 'Synced', detail);
        assert.equal(read.status?.sync?.revision, chart.version, detail);
        assert.equal(read.status?.operationState?.phase, 'Succeeded', detail);
        assert.equal(read.status?.health?.status, 'Healthy', detail);
        return read;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    assert.equal(comparisonError(app), '');
    const rendered = await core.readNamespacedConfigMap({ namespace: 'hello', name: `${chart.name}-greeting` });
    assert.deepEqual(
      rendered.data,
      { greeting: 'from the values', chart: `${chart.name}-${chart.version}` },
      "helm rendered the chart's template with its values",
    );

    // The registry served the chart's manifest and both blobs to user AWS with a token it knows was issued,
    // and that token is the Secret's: the only one GetAuthorizationToken has issued in this run.
    const served = registry.requests.slice(from).filter((r) => r.outcome === 'ok' && r.repository === `charts/${chart.name}`);
    assert.ok(
      served.some((r) => r.kind === 'manifest' && r.user === 'AWS'),
      requestsSince(from).join('\n'),
    );
    assert.equal(new Set(served.filter((r) => r.kind === 'blob' && r.method === 'GET').map((r) => r.path)).size, 2, requestsSince(from).join('\n'));
    const secret = await core.readNamespacedSecret({ namespace: 'argocd', name: secretName });
    const password = Buffer.from(secret.data?.['password'] ?? '', 'base64').toString('utf8');
    assert.equal(tap.book.size, 1);
    assert.ok(tap.book.find(password) !== undefined, 'the Secret holds the token the registry accepted');

    // How Argo CD used the Secret: helm logged in (the user, AWS above, is redacted in the log) with the CA
    // of ARGOCD_TLS_DATA_PATH, and pulled by the host's name.
    const helmCommands = repoServerLog()
      .split('\n')
      .filter((line) => line.includes('helm registry login') || line.includes('helm pull'));
    assert.ok(
      helmCommands.some((line) =>
        line.includes(`helm registry login ${host} --username ****** --password-stdin --ca-file ${join(dir, 'argocd', 'config', 'tls', host)}`),
      ),
      helmCommands.join('\n'),
    );
    assert.ok(
      helmCommands.some((line) => line.includes(`helm pull oci://${repoURL}/${chart.name} --version ${chart.version}`)),
      helmCommands.join('\n'),
    );
    assert.ok(
      proxy.targets.every((t) => t === `${host}:443`),
      proxy.targets.join(', '),
    );
  });

  it('an Application whose repoURL is written oci://...: a native OCI source to Argo CD, which the template does not match (anonymous, 401)', async () => {
    // Argo CD compares URLs as written (util/db keeps the scheme), so the template's url, the bare host, is no
    // prefix of oci://<host>/charts; and with the scheme Argo CD 3.x takes the source as an OCI artifact
    // (repository `charts`, the chart field unused), not as a Helm chart. The Secret holds a live token meanwhile.
    const from = registry.requests.length;
    await customObjects(plane).createNamespacedCustomObject({
      ...applicationKind,
      namespace: 'argocd',
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Application',
        metadata: { name: 'hello-oci', namespace: 'argocd' },
        spec: {
          project: 'default',
          source: { repoURL: `oci://${repoURL}`, chart: chart.name, targetRevision: chart.version },
          destination: { server: 'https://kubernetes.default.svc', namespace: 'hello-oci' },
          syncPolicy: { automated: {}, syncOptions: ['CreateNamespace=true'] },
        },
      },
    });
    const app = await eventually(
      'a ComparisonError',
      async () => {
        const read = (await customObjects(plane).getNamespacedCustomObject({ ...applicationKind, namespace: 'argocd', name: 'hello-oci' })) as Application;
        assert.match(
          comparisonError(read),
          /cannot get digest for revision 0\.1\.0: HEAD "https:\/\/111122223333\.dkr\.ecr\.us-east-1\.amazonaws\.com\/v2\/charts\/manifests\/0\.1\.0": basic credential not found/,
        );
        return read;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
    process.stderr.write(`argocd-repository: oci:// repoURL: ${comparisonError(app)}\n`);
    const seen = registry.requests.slice(from);
    assert.ok(seen.length > 0, 'Argo CD asked the registry');
    assert.ok(
      seen.every((r) => r.path === '/v2/charts/manifests/0.1.0' && r.user === undefined && r.outcome === 'anonymous' && r.status === 401),
      requestsSince(from).join('\n'),
    );
  });
});
