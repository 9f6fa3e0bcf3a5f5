// Where the connection to Kubernetes comes from, and what answers there. client-node's
// loadFromDefault tries KUBECONFIG, ~/.kube/config and a Pod's ServiceAccount, and when it finds none
// of them it quietly talks to http://localhost:8080, where a controller then retries for ever. Here
// that is an error that names every place looked at.

import { accessSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';

/** Where a Pod's ServiceAccount credentials are mounted (what client-node's in-cluster config reads). */
export const serviceAccountTokenPath = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError';
}

/**
 * A kubeconfig file (--kubeconfig or KUBECONFIG), else ~/.kube/config, else the in-cluster
 * ServiceAccount. Throws a KubeconfigError naming where it looked when there is none of them.
 */
export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env, tokenPath = serviceAccountTokenPath): KubeConfig {
  const config = new KubeConfig();
  if (file !== undefined) {
    try {
      config.loadFromFile(file);
    } catch (error) {
      throw new KubeconfigError(`cannot load the kubeconfig ${file} (--kubeconfig or KUBECONFIG): ${error instanceof Error ? error.message : String(error)}`);
    }
    return config;
  }
  const home = usableHome(env);
  const homeConfig = home === undefined ? undefined : join(home, '.kube', 'config');
  const inCluster = existsSync(tokenPath);
  if ((homeConfig === undefined || !existsSync(homeConfig)) && !inCluster) {
    const where = [
      '--kubeconfig and KUBECONFIG are not set',
      homeConfig === undefined ? 'HOME is not set (so there is no ~/.kube/config)' : `${homeConfig} does not exist`,
      `and this is not a Pod (no ServiceAccount token at ${tokenPath})`,
    ];
    throw new KubeconfigError(`no Kubernetes configuration: ${where.join(', ')}. Pass --kubeconfig PATH, set KUBECONFIG, or run it in the cluster`);
  }
  if ((homeConfig === undefined || !existsSync(homeConfig)) && (env['KUBERNETES_SERVICE_HOST'] === undefined || env['KUBERNETES_SERVICE_PORT'] === undefined)) {
    throw new KubeconfigError(
      `a ServiceAccount token is mounted at ${tokenPath}, but KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set, so the API server's address is unknown: pass --kubeconfig PATH or set KUBECONFIG`,
    );
  }
  config.loadFromDefault();
  return config;
}

/** As client-node finds the home directory: HOME, if it can be accessed. */
function usableHome(env: NodeJS.ProcessEnv): string | undefined {
  const home = env['HOME'];
  if (home === undefined || home === '') return undefined;
  try {
    accessSync(home);
    return home;
  } catch {
    return undefined;
  }
}

/** The API server's version (its gitVersion, e.g. v1.37.2), or why it is unknown; gives up after timeoutMs. */
export async function serverVersion(config: KubeConfig, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`unknown (no answer within ${timeoutMs} ms)`), timeoutMs);
  });
  const asked = config
    .makeApiClient(VersionApi)
    .getCode()
    .then(
      (info) => info.gitVersion,
      (error: unknown) => `unknown (${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)})`,
    );
  try {
    return await Promise.race([asked, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
