// The AWS SDK v3 behind AwsApi. Endpoints follow the SDK's own settings (AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_STS), so tests point it at local servers without special code.

import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import {
  AssumeRoleCommand,
  AssumeRoleWithWebIdentityCommand,
  GetCallerIdentityCommand,
  STSClient,
  type Credentials,
} from '@aws-sdk/client-sts';
import type {
  AssumeRoleInput,
  AwsApi,
  AwsCredentials,
  CallerIdentity,
  EcrToken,
  WebIdentityInput,
} from './api.ts';

export interface SdkOptions {
  /** Per-request timeout, ms. */
  readonly requestTimeoutMs: number;
}

/** Raised when AWS answers something that is not a usable token or credential. */
export class MalformedAwsResponse extends Error {
  override readonly name = 'MalformedAwsResponse';
}

export function sdkAwsApi(options: SdkOptions): AwsApi {
  const config = {
    maxAttempts: 1,
    requestHandler: { requestTimeout: options.requestTimeoutMs, connectionTimeout: options.requestTimeoutMs },
  };
  // Clients for the controller's own identity are kept: they cache its credentials.
  const ecrClients = new Map<string, ECRClient>();
  const stsClients = new Map<string, STSClient>();
  const ownEcr = (region: string): ECRClient => cached(ecrClients, region, () => new ECRClient({ ...config, region }));
  const ownSts = (region: string): STSClient => cached(stsClients, region, () => new STSClient({ ...config, region }));

  return {
    async getAuthorizationToken(region, credentials) {
      const client = credentials ? new ECRClient({ ...config, region, credentials }) : ownEcr(region);
      try {
        const output = await client.send(new GetAuthorizationTokenCommand({}));
        return decodeAuthorization(output.authorizationData?.[0]);
      } finally {
        if (credentials) client.destroy();
      }
    },

    async assumeRole(input: AssumeRoleInput) {
      const output = await ownSts(input.region).send(
        new AssumeRoleCommand({
          RoleArn: input.roleArn,
          RoleSessionName: input.sessionName,
          DurationSeconds: input.durationSeconds,
          ...(input.externalId !== undefined ? { ExternalId: input.externalId } : {}),
        }),
      );
      return toCredentials(output.Credentials, 'AssumeRole');
    },

    async assumeRoleWithWebIdentity(input: WebIdentityInput) {
      // Unsigned: the web identity token is the credential. Fixed dummy credentials keep the SDK from
      // walking the default chain for a call that does not use them.
      const client = new STSClient({
        ...config,
        region: input.region,
        credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' },
      });
      try {
        const output = await client.send(
          new AssumeRoleWithWebIdentityCommand({
            RoleArn: input.roleArn,
            RoleSessionName: input.sessionName,
            WebIdentityToken: input.webIdentityToken,
            DurationSeconds: input.durationSeconds,
          }),
        );
        return toCredentials(output.Credentials, 'AssumeRoleWithWebIdentity');
      } finally {
        client.destroy();
      }
    },

    async getCallerIdentity(region, credentials): Promise<CallerIdentity> {
      const client = credentials ? new STSClient({ ...config, region, credentials }) : ownSts(region);
      try {
        const output = await client.send(new GetCallerIdentityCommand({}));
        if (!output.Arn || !output.Account) throw new MalformedAwsResponse('GetCallerIdentity returned no Arn or Account');
        return { arn: output.Arn, account: output.Account, userId: output.UserId ?? '' };
      } finally {
        if (credentials) client.destroy();
      }
    },
  };
}

function cached<V>(map: Map<string, V>, key: string, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

interface AuthorizationData {
  authorizationToken?: string | undefined;
  expiresAt?: Date | undefined;
  proxyEndpoint?: string | undefined;
}

/** Decodes base64("AWS:<password>"), refusing anything else rather than writing a broken Secret. */
export function decodeAuthorization(data: AuthorizationData | undefined): EcrToken {
  const encoded = data?.authorizationToken;
  if (!encoded) throw new MalformedAwsResponse('GetAuthorizationToken returned no authorization token');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new MalformedAwsResponse('GetAuthorizationToken returned a token that is not base64');
  }
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) {
    throw new MalformedAwsResponse('GetAuthorizationToken returned a token that is not <user>:<password>');
  }
  const expiresAt = data.expiresAt instanceof Date ? data.expiresAt.getTime() : undefined;
  return {
    username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1),
    expiresAt: expiresAt !== undefined && Number.isFinite(expiresAt) ? expiresAt : undefined,
    ...(data.proxyEndpoint !== undefined ? { proxyEndpoint: data.proxyEndpoint } : {}),
  };
}

function toCredentials(credentials: Credentials | undefined, api: string): AwsCredentials {
  if (!credentials?.AccessKeyId || !credentials.SecretAccessKey) {
    throw new MalformedAwsResponse(`${api} returned no credentials`);
  }
  return {
    accessKeyId: credentials.AccessKeyId,
    secretAccessKey: credentials.SecretAccessKey,
    ...(credentials.SessionToken !== undefined ? { sessionToken: credentials.SessionToken } : {}),
    ...(credentials.Expiration !== undefined ? { expiration: credentials.Expiration } : {}),
  };
}
