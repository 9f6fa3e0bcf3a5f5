// Every Kubernetes API permission kube-ecrlogin needs, in one place, as RBAC rules: the kustomize
// ClusterRole and Role must grant exactly these (test/kustomize/rbac.test.ts compares them), and the
// doctor checks each one with a SelfSubjectAccessReview.

/** An RBAC PolicyRule, as the manifests write it. */
export interface PolicyRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly verbs: readonly string[];
}

/** Cluster-wide (ClusterRole kube-ecrlogin). */
export const clusterRules: readonly PolicyRule[] = [
  // Informer over Namespaces (src/controller/controller.ts): annotations cannot be selected server-side.
  { apiGroups: [''], resources: ['namespaces'], verbs: ['list', 'watch'] },
  // Informer over ServiceAccounts; JSON Patch of imagePullSecrets (src/kube/api.ts patchServiceAccount).
  { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['list', 'watch', 'patch'] },
  // Informer over managed Secrets, metadata only (RBAC cannot filter by label); a list by name for a
  // name the cache lacks (no `get`); create, Server-Side Apply (patch) and precondition delete (src/kube/api.ts).
  { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch', 'create', 'patch', 'delete'] },
  // Events about Namespaces (in `default`), ServiceAccounts and the ConfigMap (src/kube/events.ts).
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
];

export interface OwnNames {
  /** --config-map */
  readonly configMap: string;
  /** --lease-name */
  readonly lease: string;
  /** --status-config-map */
  readonly status: string;
}

export const defaultNames: OwnNames = { configMap: 'kube-ecrlogin-config', lease: 'kube-ecrlogin', status: 'kube-ecrlogin-status' };

/** In the controller's own namespace (Role kube-ecrlogin), for these ConfigMap, Lease and status names. */
export function namespaceRulesFor(names: OwnNames): readonly PolicyRule[] {
  return [
    // The policy ConfigMap: list-watch with the field selector metadata.name=<name> (src/config/source.ts),
    // which RBAC authorizes against resourceNames.
    { apiGroups: [''], resources: ['configmaps'], resourceNames: [names.configMap], verbs: ['list', 'watch'] },
    // The status the leader publishes for the doctor (src/status.ts): Server-Side Apply, which is
    // authorized as create (with the name) when the ConfigMap is new and as patch after; get is for
    // `kube-ecrlogin doctor` run as this ServiceAccount (kubectl exec), which reads it.
    { apiGroups: [''], resources: ['configmaps'], resourceNames: [names.status], verbs: ['create', 'patch', 'get'] },
    // Leader election (src/leader.ts): create the Lease once (a create cannot be limited by name), then
    // read and update only that Lease.
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [names.lease], verbs: ['get', 'update'] },
  ];
}

/** The Role's rules for the default names. */
export const namespaceRules: readonly PolicyRule[] = namespaceRulesFor(defaultNames);

/** Only for `ecr-login/identity: service-account` (the keyless-tenants component): TokenRequest. */
export const keylessRules: readonly PolicyRule[] = [{ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] }];

/**
 * With the admission-policy component (--admission-params NAME): the policy's parameter ConfigMap in
 * the controller's namespace, written with Server-Side Apply. An apply that creates is authorized as
 * `create` with the object's name, so both verbs can be limited to that one ConfigMap.
 */
export function admissionParamsRules(name: string): readonly PolicyRule[] {
  return [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [name], verbs: ['create', 'patch'] }];
}

/**
 * With the admission-webhook component (--webhook): its TLS Secret in the controller's namespace
 * (created once; then read and renewed by name) and, with self-signed certificates, the caBundle of
 * its own MutatingWebhookConfiguration.
 */
export function webhookRules(secret: string): readonly PolicyRule[] {
  return [
    { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
    { apiGroups: [''], resources: ['secrets'], resourceNames: [secret], verbs: ['get', 'update'] },
  ];
}

export function webhookClusterRules(configuration: string): readonly PolicyRule[] {
  return [
    { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [configuration], verbs: ['get', 'patch'] },
  ];
}

/** When a permission is needed. */
export type Need =
  /** With --webhook. */
  | 'webhook'
  /** With --admission-params. */
  | 'admission-params'
  | 'always'
  /** With --leader-elect. */
  | 'leader-election'
  /** When an annotation uses ecr-login/identity: service-account. */
  | 'keyless-tenants';

/** One permission, as a SelfSubjectAccessReview asks about it. */
export interface Permission {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  /** Absent: in every namespace (or cluster-scoped). */
  readonly namespace?: string;
  readonly name?: string;
  readonly need: Need;
}

/** Every permission the controller needs, one per verb, derived from the rules above. */
export function requiredPermissions(
  ownNamespace: string,
  names: OwnNames = defaultNames,
  admissionParams?: string,
  webhook?: { readonly secret: string; readonly configuration?: string },
): readonly Permission[] {
  const expand = (rules: readonly PolicyRule[], need: (rule: PolicyRule) => Need, namespace?: string): Permission[] =>
    rules.flatMap((rule) =>
      rule.apiGroups.flatMap((group) =>
        rule.resources.flatMap((path) => {
          const [resource = path, subresource] = path.split('/');
          return (rule.resourceNames ?? [undefined]).flatMap((name) =>
            rule.verbs.map((verb) => ({
              verb,
              group,
              resource,
              ...(subresource !== undefined ? { subresource } : {}),
              ...(namespace !== undefined ? { namespace } : {}),
              ...(name !== undefined ? { name } : {}),
              need: need(rule),
            })),
          );
        }),
      ),
    );
  return [
    ...expand(clusterRules, () => 'always'),
    ...expand(namespaceRulesFor(names), (rule) => (rule.resources.includes('leases') ? 'leader-election' : 'always'), ownNamespace),
    ...expand(keylessRules, () => 'keyless-tenants'),
    ...(admissionParams !== undefined ? expand(admissionParamsRules(admissionParams), () => 'admission-params', ownNamespace) : []),
    ...(webhook !== undefined ? expand(webhookRules(webhook.secret), () => 'webhook', ownNamespace) : []),
    ...(webhook?.configuration !== undefined ? expand(webhookClusterRules(webhook.configuration), () => 'webhook') : []),
  ];
}

/** E.g. "patch serviceaccounts cluster-wide", "get leases.coordination.k8s.io kube-ecrlogin in namespace x". */
export function describePermission(permission: Permission): string {
  const resource = `${permission.resource}${permission.subresource !== undefined ? `/${permission.subresource}` : ''}${permission.group !== '' ? `.${permission.group}` : ''}`;
  const name = permission.name !== undefined ? ` ${permission.name}` : '';
  const where = permission.namespace !== undefined ? ` in namespace ${permission.namespace}` : ' cluster-wide';
  return `${permission.verb} ${resource}${name}${where}`;
}
