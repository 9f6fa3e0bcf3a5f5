// The narrow AWS interface the core uses. Production wires the SDK adapter (sdk.ts); nothing outside
// src/aws imports an AWS SDK.

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** When the credentials stop working, if they do. */
  readonly expiration?: Date;
}

/** An ECR (or ECR Public) authorization token as GetAuthorizationToken returns it, decoded. */
export interface EcrToken {
  readonly username: string;
  readonly password: string;
  /** Epoch milliseconds; undefined when AWS did not say. */
  readonly expiresAt: number | undefined;
}

/** Where an API request goes: a region, and which of its endpoints. */
export interface ApiEndpoint {
  readonly region: string;
  /** The FIPS endpoint (api.ecr-fips.<region>..., sts-fips.<region>...). */
  readonly fips: boolean;
  /** The dual-stack (IPv4 and IPv6) endpoint (ecr.<region>.api.aws, sts.<region>.api.aws). */
  readonly dualStack: boolean;
}

/**
 * Where a registry token comes from: ECR in the registry's region (a token there serves every
 * registry of that region the caller may pull from), or ECR Public, whose API is served only in
 * us-east-1 and whose one token serves public.ecr.aws.
 */
export interface EcrEndpoint extends ApiEndpoint {
  readonly service: 'ecr' | 'ecr-public';
}

/** The region ECR Public's API is served in. */
export const ecrPublicRegion = 'us-east-1';

/** The controller's home region from the environment (AWS_REGION, as EKS sets it, or AWS_DEFAULT_REGION), if any. */
export function homeRegion(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const region = env['AWS_REGION'] || env['AWS_DEFAULT_REGION'];
  return region === '' ? undefined : region;
}

/** A stable key for an endpoint: `ecr|us-east-1`, `ecr-public|us-east-1|dualstack`, `sts|us-gov-west-1|fips`. */
export function endpointKey(service: string, endpoint: ApiEndpoint): string {
  return `${service}|${endpoint.region}${endpoint.fips ? '|fips' : ''}${endpoint.dualStack ? '|dualstack' : ''}`;
}

/** The STS endpoint that goes with a token's: the same region and variant, so a FIPS registry uses FIPS STS too. */
export function stsEndpointFor(endpoint: ApiEndpoint): ApiEndpoint {
  return { region: endpoint.region, fips: endpoint.fips, dualStack: endpoint.dualStack };
}

export interface CallerIdentity {
  readonly arn: string;
  readonly account: string;
}

export interface AssumeRoleInput {
  readonly endpoint: ApiEndpoint;
  readonly roleArn: string;
  readonly sessionName: string;
  readonly durationSeconds: number;
  readonly externalId?: string;
}

export interface WebIdentityInput {
  readonly endpoint: ApiEndpoint;
  readonly roleArn: string;
  readonly sessionName: string;
  readonly durationSeconds: number;
  readonly webIdentityToken: string;
}

/**
 * AWS as the controller sees it. `credentials` undefined means the controller's own identity from the
 * SDK's default chain (IRSA, EKS Pod Identity, static keys from the environment, instance profile).
 * Each call is a single attempt: retries are the caller's (p-retry in the token broker).
 */
export interface AwsApi {
  getAuthorizationToken(endpoint: EcrEndpoint, credentials?: AwsCredentials): Promise<EcrToken>;
  assumeRole(input: AssumeRoleInput): Promise<AwsCredentials>;
  assumeRoleWithWebIdentity(input: WebIdentityInput): Promise<AwsCredentials>;
  getCallerIdentity(region: string, credentials?: AwsCredentials): Promise<CallerIdentity>;
}
