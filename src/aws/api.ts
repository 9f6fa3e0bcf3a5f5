// The narrow AWS interface the core uses. Production wires the SDK adapter (sdk.ts); nothing outside
// src/aws imports an AWS SDK.

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** When the credentials stop working, if they do. */
  readonly expiration?: Date;
}

/** An ECR authorization token as GetAuthorizationToken returns it, decoded. */
export interface EcrToken {
  readonly username: string;
  readonly password: string;
  /** Epoch milliseconds; undefined when AWS did not say. */
  readonly expiresAt: number | undefined;
  readonly proxyEndpoint?: string;
}

export interface CallerIdentity {
  readonly arn: string;
  readonly account: string;
  readonly userId: string;
}

export interface AssumeRoleInput {
  readonly region: string;
  readonly roleArn: string;
  readonly sessionName: string;
  readonly durationSeconds: number;
  readonly externalId?: string;
}

export interface WebIdentityInput {
  readonly region: string;
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
  getAuthorizationToken(region: string, credentials?: AwsCredentials): Promise<EcrToken>;
  assumeRole(input: AssumeRoleInput): Promise<AwsCredentials>;
  assumeRoleWithWebIdentity(input: WebIdentityInput): Promise<AwsCredentials>;
  getCallerIdentity(region: string, credentials?: AwsCredentials): Promise<CallerIdentity>;
}
