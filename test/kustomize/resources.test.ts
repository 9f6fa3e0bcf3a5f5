// The Deployment's resources against what the controller uses: the image's bundle, run with the
// Dockerfile's NODE_OPTIONS (heap share resolved against the Deployment's limit) against the test
// control plane, once ready must fit in the memory request; the figures behind the request are
// written beside it, with the command that measures them (test/bench/memory.ts).

import { spawn } from 'node:child_process';
import { once as eventOf } from 'node:events';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { buildImageApp, imageEnv, imageRuntime, quantityMiB } from '../bench/image-runtime.ts';
import { processCost } from '../bench/proc.ts';
import { freePorts, repoRoot } from '../cluster/controlplane.ts';
import { cluster, uniqueName } from '../support/cluster.ts';
import { controllerKeys } from '../support/controller.ts';
import { eventually } from '../support/eventually.ts';

const manifest = readFileSync(join(repoRoot, 'kustomize', 'base', 'deployment.yaml'), 'utf8');

function containerResources(): { requests: { memory: string }; limits: { memory: string } } {
  const deployment = parseAllDocuments(manifest)[0]?.toJS() as {
    spec: { template: { spec: { containers: { resources: { requests: { memory: string }; limits: { memory: string } } }[] } } };
  };
  const container = deployment.spec.template.spec.containers[0];
  assert.ok(container);
  return container.resources;
}

describe("the Deployment's resources", () => {
  it('request at least the memory the bundle uses once ready, as the image runs it', async (t) => {
    const resources = containerResources();
    const request = quantityMiB(resources.requests.memory);
    assert.ok(request <= quantityMiB(resources.limits.memory));
    assert.match(manifest, /`node test\/bench\/memory\.ts 300`/, 'the request says how it was measured');

    const app = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-resources-'));
    const plane = cluster();
    const kubeconfig = plane.writeKubeconfig(plane.adminConfig(), join(app, 'kubeconfig'));
    const [health] = await freePorts(1);
    const bundle = buildImageApp(app);
    const child = spawn(
      process.execPath,
      [
        ...imageRuntime().nodeArgs,
        bundle,
        'run',
        '--namespace',
        'default',
        '--namespace-selector',
        `kube-ecrlogin.test/resources=${uniqueName('none')}`,
        '--metrics-bind-address',
        '0',
        '--health-probe-bind-address',
        `127.0.0.1:${String(health)}`,
      ],
      {
        env: {
          ...imageEnv(bundle),
          PATH: process.env['PATH'] ?? '',
          HOME: app,
          KUBECONFIG: kubeconfig,
          AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
          AWS_ACCESS_KEY_ID: controllerKeys.accessKeyId,
          AWS_SECRET_ACCESS_KEY: controllerKeys.secretAccessKey,
          AWS_REGION: 'us-east-1',
          AWS_EC2_METADATA_DISABLED: 'true',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let output = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = eventOf(child, 'exit');
    try {
      await eventually('/readyz answers 200', async () => {
        if (child.exitCode !== null) throw new Error(`exited ${String(child.exitCode)}:\n${output}`);
        assert.equal((await fetch(`http://127.0.0.1:${String(health)}/readyz`)).status, 200);
      });
      // Ready: config loaded, every cache listed (this control plane holds every other test's objects).
      let rss = 0;
      for (let sample = 0; sample < 10; sample++) {
        rss = Math.max(rss, processCost(child.pid ?? 0).rssMiB);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      t.diagnostic(`resident once ready: ${rss.toFixed(0)} MiB; request ${resources.requests.memory}`);
      assert.ok(rss <= request, `the bundle uses ${rss.toFixed(0)} MiB once ready, above the request of ${resources.requests.memory}`);
    } finally {
      child.kill('SIGTERM');
      await exited;
      rmSync(app, { recursive: true, force: true });
    }
  });
});
