// Structured JSON logs (winston) with stable keys and Kubernetes-style messages ("Applied Secret").
// A redaction format runs last on every line: no token, password, `auth` value, AWS secret or JWT is
// ever written, whatever a caller passes.

import winston from 'winston';
import type { LogLevel } from './config/settings.ts';

export type Logger = winston.Logger;

const redacted = '[REDACTED]';

/** Keys whose values are secrets, wherever they appear. */
const secretKeys =
  /^(password|passwd|auth|authorization|authorizationtoken|token|idtoken|webidentitytoken|sessiontoken|secretaccesskey|accesskeyid|credentials?|\.?dockerconfigjson|data|x-amz-security-token|bearer)$/i;

/** Secret-looking substrings inside any string. */
const secretPatterns: readonly [RegExp, string][] = [
  // JSON Web Tokens (ServiceAccount tokens): three base64url parts, the first two JSON objects.
  [/eyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*/g, '[REDACTED-JWT]'],
  // Base64 of a JSON object, at length: an ECR password, a base64 .dockerconfigjson, a JWT part.
  [/\beyJ[A-Za-z0-9+/]{20,}={0,2}/g, redacted],
  // Bearer credentials in headers or messages.
  [/(Bearer\s+)[\w.~+/=-]+/gi, `$1${redacted}`],
  // ECR authorization tokens: base64("AWS:...") starts with QVdTO.
  [/QVdTO[A-Za-z0-9+/=]{8,}/g, redacted],
  // A decoded ECR token or docker login pair.
  [/\bAWS:[A-Za-z0-9+/=_-]{8,}/g, `AWS:${redacted}`],
  // AWS access key ids (the secret key is caught by its key name).
  [/\b(AKIA|ASIA)[A-Z0-9]{12,}\b/g, redacted],
  // "password":"...", "auth":"..." inside serialized JSON.
  [/("(?:password|auth|token|secretAccessKey|sessionToken|\.dockerconfigjson)"\s*:\s*)"[^"]*"/gi, `$1"${redacted}"`],
];

/** Removes secrets from a string. */
export function redactString(text: string): string {
  let out = text;
  for (const [pattern, replacement] of secretPatterns) out = out.replace(pattern, replacement);
  return out;
}

/** A deep copy of value with secrets removed (key names and string contents). */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  // Deeper than this is not walked, so it is not written either (it also ends cycles).
  if (depth > 8) return '[TOO DEEP]';
  if (value instanceof Error) return { name: value.name, message: redactString(value.message) };
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = secretKeys.test(key) && inner !== undefined && inner !== null && inner !== '' ? redacted : redact(inner, depth + 1);
  }
  return out;
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    const inner = info[key];
    info[key] = secretKeys.test(key) && inner !== undefined && inner !== null && inner !== '' ? redacted : redact(inner);
  }
  return info;
});

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly stream?: NodeJS.WritableStream;
  /** Extra fields on every line. */
  readonly defaultMeta?: Record<string, string>;
}

export function createLogger(options: LoggerOptions): Logger {
  const transport = options.stream ? new winston.transports.Stream({ stream: options.stream }) : new winston.transports.Stream({ stream: process.stderr });
  return winston.createLogger({
    level: options.level,
    defaultMeta: { logger: 'kube-ecrlogin', ...options.defaultMeta },
    format: winston.format.combine(winston.format.errors({ stack: false }), winston.format.timestamp(), redactFormat(), winston.format.json()),
    transports: [transport],
  });
}

/** A logger that writes nothing, for tests that do not look at logs. */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

/** A short, safe description of an error for a log field. */
export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return redactString(text.split('\n')[0] ?? text).slice(0, 500);
}
