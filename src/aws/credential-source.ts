// Which link of the AWS SDK's default credential chain gives the controller its own identity, read
// from the environment as the chain reads it (@aws-sdk/credential-provider-node, in its order). Said
// in the first log line; never a credential, only where it comes from.

export function credentialSource(env: Readonly<Record<string, string | undefined>>): string {
  const set = (name: string): string | undefined => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const profile = set('AWS_PROFILE');
  // The chain reads the environment's keys only when no profile is named.
  if (profile === undefined && set('AWS_ACCESS_KEY_ID') !== undefined && set('AWS_SECRET_ACCESS_KEY') !== undefined) {
    return 'static keys (AWS_ACCESS_KEY_ID)';
  }
  if (profile !== undefined) return `shared config profile ${profile} (AWS_PROFILE)`;
  const role = set('AWS_ROLE_ARN');
  if (set('AWS_WEB_IDENTITY_TOKEN_FILE') !== undefined && role !== undefined) return `web identity (IRSA) for ${role}`;
  if (set('AWS_CONTAINER_CREDENTIALS_FULL_URI') !== undefined || set('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI') !== undefined) {
    return 'container credentials (EKS Pod Identity, or an ECS task role)';
  }
  return 'the default chain: ~/.aws files, else the instance profile (IMDS)';
}
