// ECR GetAuthorizationToken over awsJson1_1 (X-Amz-Target
// AmazonEC2ContainerRegistry_V20150921.*), and ECR Public's (X-Amz-Target
// SpencerFrontendService.*, signing name ecr-public, served in us-east-1 only). The token is
// base64("AWS:" + password) with an opaque password shaped like ECR's (a base64 JSON envelope),
// unique per call; expiresAt is epoch seconds (a JSON number) from the injected clock plus the
// configured lifetime. ECR answers a list with a proxy endpoint in the caller's account and the
// region's partition; ECR Public one object, with no proxy endpoint.

import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { regionPartition } from '../../src/aws/partitions.ts';
import type { AwsError } from './errors.ts';
import type { Principal } from './identity.ts';

export const ecrTargetPrefix = 'AmazonEC2ContainerRegistry_V20150921.';
export const ecrPublicTargetPrefix = 'SpencerFrontendService.';
const contentType = 'application/x-amz-json-1.1';

export interface AuthorizationData {
  authorizationToken: string;
  /** Epoch seconds. */
  expiresAt: number;
  proxyEndpoint: string;
}

export interface PublicAuthorizationData {
  authorizationToken: string;
  /** Epoch seconds. */
  expiresAt: number;
}

interface TokenOptions {
  tokenLifetimeSeconds: number;
  now: () => number;
}

export function getAuthorizationToken(caller: Principal, region: string, options: TokenOptions): { authorizationData: AuthorizationData[] } {
  const { authorizationToken, expiresAt } = token(options);
  const suffix = regionPartition(region)?.dnsSuffix ?? 'amazonaws.com';
  return { authorizationData: [{ authorizationToken, expiresAt, proxyEndpoint: `https://${caller.account}.dkr.ecr.${region}.${suffix}` }] };
}

export function getPublicAuthorizationToken(options: TokenOptions): { authorizationData: PublicAuthorizationData } {
  return { authorizationData: token(options) };
}

function token(options: TokenOptions): PublicAuthorizationData {
  const expiresAtMs = options.now() + options.tokenLifetimeSeconds * 1000;
  const password = Buffer.from(
    JSON.stringify({
      payload: randomBytes(1024).toString('base64'),
      datakey: randomBytes(280).toString('base64'),
      version: '2',
      type: 'DATA_KEY',
      expiration: Math.floor(expiresAtMs / 1000),
    }),
  ).toString('base64');
  return { authorizationToken: Buffer.from(`AWS:${password}`).toString('base64'), expiresAt: expiresAtMs / 1000 };
}

export function sendEcrResult(res: ServerResponse, requestId: string, body: unknown): void {
  send(res, 200, requestId, JSON.stringify(body));
}

export function sendEcrError(res: ServerResponse, requestId: string, err: AwsError): void {
  send(res, err.status, requestId, JSON.stringify({ __type: err.code, message: err.message }));
}

function send(res: ServerResponse, status: number, requestId: string, body: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}
