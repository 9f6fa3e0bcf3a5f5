// Whether the controller has an AWS identity at all, judged from what the AWS SDK's default chain sees:
// the placeholder role the manifests ship (components/irsa) in AWS_ROLE_ARN, or no credentials anywhere
// (the chain's own "could not load credentials" error). Either is a mistake of the install, never a
// passing fault, so it is said plainly: in the log, by /readyz and by `kube-ecrlogin doctor`.
// Pure; imports nothing.

/** The role ARN of components/irsa and kustomize/examples/install, to be replaced by the installer. */
export const placeholderRoleArn = 'arn:aws:iam::111122223333:role/kube-ecrlogin';

const fix =
  'set the role ARN on the ServiceAccount (annotation eks.amazonaws.com/role-arn, e.g. the patch in ' +
  'kustomize/examples/install), or use EKS Pod Identity (components/pod-identity and an association) or static keys ' +
  '(components/static-credentials and the Secret kube-ecrlogin-aws), then restart the Pod';

/**
 * From the environment the SDK reads: the placeholder role named by IRSA, when the chain would use it
 * (keys in the environment or a named profile come before web identity in the SDK's default chain).
 */
export function identityProblemFromEnv(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const set = (name: string): boolean => (env[name] ?? '') !== '';
  if ((set('AWS_ACCESS_KEY_ID') && set('AWS_SECRET_ACCESS_KEY')) || set('AWS_PROFILE')) return undefined;
  if (env['AWS_ROLE_ARN']?.trim() !== placeholderRoleArn) return undefined;
  return `no AWS identity: the ServiceAccount names the placeholder role ${placeholderRoleArn} (AWS_ROLE_ARN); ${fix}`;
}

/** From a ServiceAccount's annotations (what IRSA turns into AWS_ROLE_ARN), for the doctor. */
export function identityProblemFromServiceAccount(name: string, annotations: Readonly<Record<string, string>> | undefined): string | undefined {
  if (annotations?.['eks.amazonaws.com/role-arn']?.trim() !== placeholderRoleArn) return undefined;
  return `no AWS identity: ServiceAccount ${name} names the placeholder role ${placeholderRoleArn}; ${fix}`;
}

/** From a failed AWS call: the SDK's credential chain found nothing at all. */
export function identityProblemFromError(error: unknown): string | undefined {
  const e = (typeof error === 'object' && error !== null ? error : {}) as { name?: unknown; message?: unknown };
  const none = e.name === 'CredentialsProviderError' || (typeof e.message === 'string' && /could not load credentials from any providers/i.test(e.message));
  if (!none) return undefined;
  return `no AWS identity: the AWS SDK found no credentials (no role for the ServiceAccount, no Pod Identity, no keys, no instance profile); ${fix}`;
}
