// Pods on the test Node, and what became of their pulls, read the way a user reads them: the Pod's
// container states and the kubelet's Events.
//
// There is no scheduler and no CNI: every Pod is bound to the Node by spec.nodeName, uses the host's
// network (the Node stays NotReady without CNI, which does not stop host-network Pods) and tolerates
// every taint. imagePullPolicy Always: every Pod's pull goes to the registry with the Pod's own
// credentials, whatever an earlier Pod left on the Node.

import * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../cluster/controlplane.ts';
import { eventually } from '../support/eventually.ts';

export interface PodSpecOptions {
  readonly images: readonly string[];
  readonly serviceAccountName?: string;
  readonly imagePullSecrets?: readonly string[];
}

/** The part of a Pod spec that puts it on the test Node, for Pods and Pod templates alike. */
export function onTheNode(nodeName: string): Partial<k8s.V1PodSpec> {
  return {
    nodeName,
    hostNetwork: true,
    tolerations: [{ operator: 'Exists' }],
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: 1,
  };
}

export function podSpec(nodeName: string, options: PodSpecOptions): k8s.V1PodSpec {
  return {
    ...onTheNode(nodeName),
    ...(options.serviceAccountName !== undefined ? { serviceAccountName: options.serviceAccountName } : {}),
    ...(options.imagePullSecrets !== undefined ? { imagePullSecrets: options.imagePullSecrets.map((name) => ({ name })) } : {}),
    containers: options.images.map((image, i) => ({ name: `c${i}`, image, imagePullPolicy: 'Always' })),
  };
}

export async function createPod(plane: ControlPlane, namespace: string, nodeName: string, options: PodSpecOptions): Promise<k8s.V1Pod> {
  const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
  return core.createNamespacedPod({ namespace, body: { metadata: { generateName: 'pull-' }, spec: podSpec(nodeName, options) } });
}

export const pullSecretsOf = (pod: k8s.V1Pod): string[] => (pod.spec?.imagePullSecrets ?? []).map((ref) => ref.name ?? '');

/** Where a Pod's pulls ended: every container running, or one refused (ErrImagePull, ImagePullBackOff). */
export type PullOutcome = 'running' | 'refused';

export interface Settled {
  readonly outcome: PullOutcome;
  readonly pod: k8s.V1Pod;
  /** The kubelet's Events about the Pod, oldest first. */
  readonly events: readonly k8s.CoreV1Event[];
}

const refusedReasons = new Set(['ErrImagePull', 'ImagePullBackOff']);

function outcomeOf(pod: k8s.V1Pod): PullOutcome | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  if (statuses.some((status) => refusedReasons.has(status.state?.waiting?.reason ?? ''))) return 'refused';
  const count = pod.spec?.containers.length ?? 0;
  if (pod.status?.phase === 'Running' && statuses.length === count && statuses.every((status) => status.state?.running !== undefined)) return 'running';
  return undefined;
}

async function kubeletEvents(core: k8s.CoreV1Api, namespace: string, name: string): Promise<k8s.CoreV1Event[]> {
  const list = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.kind=Pod,involvedObject.name=${name}` });
  return list.items.sort((a, b) => eventTime(a) - eventTime(b));
}

function eventTime(event: k8s.CoreV1Event): number {
  return new Date(event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? 0).getTime();
}

/**
 * Waits until the Pod's pulls have settled, and until the kubelet's Event that says so is there: a
 * Pulled Event per container for a running Pod, a Failed Event ("Failed to pull image") for a refused one.
 */
export async function settled(plane: ControlPlane, namespace: string, name: string, timeoutMs = 90_000): Promise<Settled> {
  const core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
  return eventually(
    `Pod ${namespace}/${name} running or refused, with the kubelet's Events`,
    async () => {
      const pod = await core.readNamespacedPod({ namespace, name });
      const outcome = outcomeOf(pod);
      if (outcome === undefined) throw new Error(`not settled: ${describePod(pod)}`);
      const events = await kubeletEvents(core, namespace, name);
      const pulled = pod.spec?.containers.every((container) => pulledEvent(events, container.image ?? '') !== undefined) ?? false;
      if (outcome === 'running' && !pulled) throw new Error('running, without a Pulled Event per container yet');
      if (outcome === 'refused' && failedPulls(events).length === 0) throw new Error('refused, without a Failed Event yet');
      return { outcome, pod, events };
    },
    { timeoutMs, intervalMs: 250 },
  );
}

/** The kubelet's "Successfully pulled image" Event for an image. */
export function pulledEvent(events: readonly k8s.CoreV1Event[], image: string): k8s.CoreV1Event | undefined {
  return events.find((event) => event.reason === 'Pulled' && (event.message ?? '').includes(`Successfully pulled image "${image}"`));
}

/** The kubelet's "Failed to pull image" Events. */
export function failedPulls(events: readonly k8s.CoreV1Event[]): k8s.CoreV1Event[] {
  return events.filter((event) => event.reason === 'Failed' && (event.message ?? '').includes('Failed to pull image'));
}

/** A one-line account of a Pod, for failure messages. */
export function describePod(pod: k8s.V1Pod): string {
  const states = (pod.status?.containerStatuses ?? []).map((status) => {
    const state = status.state;
    const what =
      state?.running !== undefined
        ? 'running'
        : state?.waiting !== undefined
          ? `waiting ${state.waiting.reason ?? ''} ${state.waiting.message ?? ''}`
          : 'terminated';
    return `${status.name}: ${what}`;
  });
  return `${pod.metadata?.name ?? '?'} ${pod.status?.phase ?? 'no phase'} [${states.join('; ')}]`;
}
