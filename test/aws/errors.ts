// AWS-shaped errors thrown by the ECR and STS handlers. The wire modules render them as
// awsJson1_1 bodies (ECR) or awsQuery <ErrorResponse> documents (STS). The same condition
// has different codes and statuses in the two services, exactly as on the real endpoints.

/** ECR and ECR Public speak awsJson1_1 and share its error shapes; STS speaks awsQuery. */
export type Service = 'ecr' | 'ecr-public' | 'sts';

export class AwsError extends Error {
  readonly code: string;
  readonly status: number;
  /** awsQuery <Type>: Sender for 4xx, Receiver for 5xx. */
  readonly fault: 'Sender' | 'Receiver';
  /** Why, beyond what AWS would say (e.g. the IdP fetch that failed); recorded in the call log, never sent. */
  readonly detail: string | undefined;

  constructor(code: string, message: string, status = 400, detail?: string) {
    super(message);
    this.detail = detail;
    this.name = code;
    this.code = code;
    this.status = status;
    this.fault = status >= 500 ? 'Receiver' : 'Sender';
  }
}

const invalidToken = 'The security token included in the request is invalid.';
const expiredToken = 'The security token included in the request is expired';
const badSignature =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

export const authErrors = {
  missing: (s: Service): AwsError =>
    s !== 'sts'
      ? new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token')
      : new AwsError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403),
  unknownKey: (s: Service): AwsError =>
    s !== 'sts' ? new AwsError('UnrecognizedClientException', invalidToken) : new AwsError('InvalidClientTokenId', invalidToken, 403),
  expired: (s: Service): AwsError => (s !== 'sts' ? new AwsError('ExpiredTokenException', expiredToken) : new AwsError('ExpiredToken', expiredToken, 403)),
  badSignature: (s: Service): AwsError =>
    s !== 'sts' ? new AwsError('InvalidSignatureException', badSignature) : new AwsError('SignatureDoesNotMatch', badSignature, 403),
};

export const serviceErrors = {
  throttle: (s: Service): AwsError => (s !== 'sts' ? new AwsError('ThrottlingException', 'Rate exceeded') : new AwsError('Throttling', 'Rate exceeded')),
  unavailable: (s: Service): AwsError =>
    s !== 'sts'
      ? new AwsError('ServiceUnavailableException', 'Service Unavailable', 503)
      : new AwsError('ServiceUnavailable', 'Service is unable to handle request.', 503),
  internal: (s: Service): AwsError =>
    s !== 'sts' ? new AwsError('ServerException', 'Internal server error', 500) : new AwsError('InternalFailure', 'An internal error occurred.', 500),
  /** `action` like "ecr:GetAuthorizationToken", `resource` an ARN or "*". */
  accessDenied: (s: Service, caller: string, action: string, resource: string): AwsError =>
    s !== 'sts'
      ? new AwsError(
          'AccessDeniedException',
          `User: ${caller} is not authorized to perform: ${action} on resource: ${resource} ` + `because no identity-based policy allows the ${action} action`,
        )
      : new AwsError('AccessDenied', `User: ${caller} is not authorized to perform: ${action} on resource: ${resource}`, 403),
};

export function validationError(field: string, value: string, constraint: string): AwsError {
  return new AwsError('ValidationError', `1 validation error detected: Value '${value}' at '${field}' failed to satisfy constraint: ${constraint}`);
}
