// Validators of values users write (object names, role ARNs) and how errors quote them. A leaf module:
// the annotation parser, the registry parser and the config parser all use it. Pure.

/** Quotes a user-supplied value for an error message: JSON-escaped and cut to a readable length. */
export function quote(value: string, max = 80): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(cut);
}

const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why a value is not a valid object name (RFC 1123 subdomain), or undefined when it is. */
export function dnsSubdomainProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.length > 253) return `${quote(name)} is longer than 253 characters`;
  if (!dnsSubdomain.test(name)) {
    return `${quote(name)} is not a valid name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`;
  }
  return undefined;
}

const roleArnPattern = /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):iam::(\d{12}):role\/([\w+=,.@/-]{1,512})$/;

/** Why a value is not an IAM role ARN, or undefined when it is. */
export function roleArnProblem(arn: string): string | undefined {
  if (roleArnPattern.test(arn)) return undefined;
  return `${quote(arn)} is not an IAM role ARN (expected arn:<partition>:iam::<12-digit account>:role/<name>)`;
}

/** The partition of a role ARN (validated by roleArnProblem): aws, aws-cn, aws-us-gov, ... */
export function roleArnPartition(arn: string): string | undefined {
  return roleArnPattern.exec(arn)?.[1];
}
