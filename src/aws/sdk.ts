// The AWS SDK v3 behind AwsApi. Endpoints are the SDK's own: its endpoint rules and partition table
// pick the host for a region (amazonaws.com.cn for China, c2s.ic.gov for ISO, ...) and for the FIPS
// and dual-stack variants a registry host asks for. The SDK's own settings (AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_ECR, AWS_ENDPOINT_URL_ECR_PUBLIC, AWS_ENDPOINT_URL_STS) still point it elsewhere,
// so tests reach local servers without special code.

import { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { ECRPUBLICClient, GetAuthorizationTokenCommand as GetPublicAuthorizationTokenCommand } from '@aws-sdk/client-ecr-public';
import {
  AssumeRoleCommand,
  AssumeRoleWithWebIdentityCommand,
  GetCallerIdentityCommand,
  STSClient,
  type Credentials,
  type STSClientConfig,
} from '@aws-sdk/client-sts';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import {
  endpointKey,
  homeRegion,
  type ApiEndpoint,
  type AssumeRoleInput,
  type AwsApi,
  type AwsCredentials,
  type CallerIdentity,
  type EcrEndpoint,
  type EcrToken,
  type WebIdentityInput,
} from './api.ts';
import { ClientPool, type Destroyable } from './clients.ts';

export interface SdkOptions {
  /** Per-request timeout, ms. */
  readonly requestTimeoutMs: number;
  /** Most clients kept for the controller's own identity, one per endpoint (default 16). */
  readonly maxClients?: number;
  /** How long such a client is kept unused, ms (default 10 minutes). */
  readonly idleClientMs?: number;
  /** Replaces the SDK's HTTP handler: for tests that look at where each request would go. */
  readonly requestHandler?: STSClientConfig['requestHandler'];
}

/** The SDK adapter, with what it keeps. */
export interface SdkAwsApi extends AwsApi {
  /** Clients kept for the controller's own identity now. */
  readonly clients: number;
}

/** Raised when AWS answers something that is not a usable token or credential. */
export class MalformedAwsResponse extends Error {
  override readonly name = 'MalformedAwsResponse';
}

type Client = Destroyable & { readonly config: object };

export function sdkAwsApi(options: SdkOptions): SdkAwsApi {
  const base = {
    maxAttempts: 1,
    requestHandler: options.requestHandler ?? { requestTimeout: options.requestTimeoutMs, connectionTimeout: options.requestTimeoutMs },
  };
  // The controller's own identity, resolved once for every client: under IRSA one
  // AssumeRoleWithWebIdentity serves every region, not one per client. Its STS calls go to the
  // controller's home region when it has one (EKS sets AWS_REGION), else to the first caller's.
  const home = homeRegion();
  const own = defaultProvider(home !== undefined ? { clientConfig: { region: home } } : {});
  const pool = new ClientPool<Client>({ max: options.maxClients ?? 16, idleMs: options.idleClientMs ?? 600_000 });

  /** Runs work with a client for endpoint: a kept one for the controller's identity, a throwaway one for other credentials. */
  async function withClient<C extends Client, T>(
    service: string,
    endpoint: ApiEndpoint,
    credentials: AwsCredentials | undefined,
    make: (config: ClientConfig) => C,
    work: (client: C) => Promise<T>,
  ): Promise<T> {
    const build = (): C => {
      const client: C = make({ ...base, region: endpoint.region, credentials: credentials ?? own, ...variants(endpoint, () => client) });
      return client;
    };
    if (credentials === undefined) return pool.use(endpointKey(service, endpoint), build, (client) => work(client as C));
    const client = build();
    try {
      return await work(client);
    } finally {
      client.destroy();
    }
  }

  const sts = (endpoint: ApiEndpoint, credentials: AwsCredentials | undefined, work: (client: STSClient) => Promise<AwsCredentials>) =>
    withClient('sts', endpoint, credentials, (config) => new STSClient(config), work);

  return {
    get clients() {
      return pool.size;
    },

    async getAuthorizationToken(endpoint: EcrEndpoint, credentials?: AwsCredentials): Promise<EcrToken> {
      if (endpoint.service === 'ecr-public') {
        return withClient(
          'ecr-public',
          endpoint,
          credentials,
          (config) => new ECRPUBLICClient(config),
          async (client) => {
            const output = await client.send(new GetPublicAuthorizationTokenCommand({}));
            return decodeAuthorization(output.authorizationData);
          },
        );
      }
      return withClient(
        'ecr',
        endpoint,
        credentials,
        (config) => new ECRClient(config),
        async (client) => {
          const output = await client.send(new GetAuthorizationTokenCommand({}));
          return decodeAuthorization(output.authorizationData?.[0]);
        },
      );
    },

    assumeRole(input: AssumeRoleInput) {
      return sts(input.endpoint, undefined, async (client) => {
        const output = await client.send(
          new AssumeRoleCommand({
            RoleArn: input.roleArn,
            RoleSessionName: input.sessionName,
            DurationSeconds: input.durationSeconds,
            ...(input.externalId !== undefined ? { ExternalId: input.externalId } : {}),
          }),
        );
        return toCredentials(output.Credentials, 'AssumeRole');
      });
    },

    assumeRoleWithWebIdentity(input: WebIdentityInput) {
      // Unsigned: the web identity token is the credential. Fixed dummy credentials keep the SDK from
      // walking the default chain for a call that does not use them.
      return sts(input.endpoint, { accessKeyId: 'unused', secretAccessKey: 'unused' }, async (client) => {
        const output = await client.send(
          new AssumeRoleWithWebIdentityCommand({
            RoleArn: input.roleArn,
            RoleSessionName: input.sessionName,
            WebIdentityToken: input.webIdentityToken,
            DurationSeconds: input.durationSeconds,
          }),
        );
        return toCredentials(output.Credentials, 'AssumeRoleWithWebIdentity');
      });
    },

    async getCallerIdentity(region, credentials): Promise<CallerIdentity> {
      const endpoint = { region, fips: false, dualStack: false };
      return withClient(
        'sts',
        endpoint,
        credentials,
        (config) => new STSClient(config),
        async (client) => {
          const output = await client.send(new GetCallerIdentityCommand({}));
          if (!output.Arn || !output.Account) throw new MalformedAwsResponse('GetCallerIdentity returned no Arn or Account');
          return { arn: output.Arn, account: output.Account };
        },
      );
    },
  };
}

/** What every client gets: the fields the three clients' configurations share. */
type ClientConfig = Pick<STSClientConfig, 'maxAttempts' | 'requestHandler' | 'credentials' | 'useFipsEndpoint' | 'useDualstackEndpoint'> & {
  readonly region: string;
};

/**
 * The FIPS and dual-stack settings for an endpoint. Asked for only when wanted, so that the SDK's own
 * AWS_USE_FIPS_ENDPOINT and AWS_USE_DUALSTACK_ENDPOINT still apply to the rest. An endpoint the SDK's
 * configuration names for the service (AWS_ENDPOINT_URL...) takes precedence: the SDK refuses a
 * variant together with a custom endpoint, and whoever set one chose where requests go.
 */
function variants(endpoint: ApiEndpoint, self: () => Client): Pick<ClientConfig, 'useFipsEndpoint' | 'useDualstackEndpoint'> {
  const unlessConfigured = async (): Promise<boolean> => {
    const config = self().config as { serviceConfiguredEndpoint?: () => Promise<string | undefined> };
    return (await config.serviceConfiguredEndpoint?.()) === undefined;
  };
  return {
    ...(endpoint.fips ? { useFipsEndpoint: unlessConfigured } : {}),
    ...(endpoint.dualStack ? { useDualstackEndpoint: unlessConfigured } : {}),
  };
}

interface AuthorizationData {
  authorizationToken?: string | undefined;
  expiresAt?: Date | undefined;
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
