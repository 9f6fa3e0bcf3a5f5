// The webhook's certificates: a CA of its own and a serving certificate it signs, made without any
// extra install (keys from node:crypto, X.509 from node-forge), and the rule that says when each is
// renewed. No I/O.

import { createPrivateKey, generateKeyPairSync, X509Certificate, randomBytes } from 'node:crypto';
import forge from 'node-forge';

/** What the webhook's TLS Secret holds (PEM). `ca.crt` may hold two CAs while one is being replaced. */
export interface CertBundle {
  readonly caCert: string;
  readonly caKey: string;
  readonly cert: string;
  readonly key: string;
  /** Every CA a client should trust: the current one first, then the one it replaces, if any. */
  readonly caBundle: string;
}

export interface Lifetimes {
  /** The serving certificate's lifetime, ms. The CA lives four times as long. */
  readonly certMs: number;
}

/** Certificates are valid from this long before they are made. */
const backdateMs = 60_000;

/** The CA lives this many serving certificates' lifetimes. */
const caFactor = 4;

/** A certificate is renewed once this share of its lifetime is left. */
export const renewShare = 1 / 3;

/** A new CA and a serving certificate for these DNS names and IP addresses, valid from now. */
export function newBundle(hosts: readonly string[], lifetimes: Lifetimes, now: number, previousCa?: string): CertBundle {
  const ca = makeCa(lifetimes.certMs * caFactor, now);
  const leaf = makeLeaf(hosts, ca, lifetimes.certMs, now);
  const current = firstCertificate(ca.cert);
  const older =
    previousCa === undefined
      ? []
      : splitPem(previousCa)
          .filter((pem) => stillValid(pem, now) && pem !== current)
          .slice(0, 1);
  return { caCert: ca.cert, caKey: ca.key, cert: leaf.cert, key: leaf.key, caBundle: [current, ...older].join('') };
}

/** A new serving certificate from the bundle's CA, keeping the CA and the trust bundle. */
export function renewLeaf(bundle: CertBundle, hosts: readonly string[], lifetimes: Lifetimes, now: number): CertBundle {
  const leaf = makeLeaf(hosts, { cert: bundle.caCert, key: bundle.caKey }, lifetimes.certMs, now);
  return { ...bundle, cert: leaf.cert, key: leaf.key };
}

/**
 * A new CA, trusted beside the current one; the serving certificate stays until the new CA is in the
 * webhook configuration's caBundle (then 'leaf' replaces it), so that the API server never meets a
 * certificate it cannot verify.
 */
export function rotateCa(bundle: CertBundle, lifetimes: Lifetimes, now: number): CertBundle {
  const ca = makeCa(lifetimes.certMs * caFactor, now);
  const current = firstCertificate(ca.cert);
  const older = splitPem(bundle.caBundle)
    .filter((pem) => pem !== current && stillValid(pem, now))
    .slice(0, 1);
  return { ...bundle, caCert: ca.cert, caKey: ca.key, caBundle: [current, ...older].join('') };
}

/**
 * The next step for a bundle, given the caBundle the webhook configuration holds (`trusted`):
 * - new: nothing usable (no CA, or its key does not match): a new CA and serving certificate;
 * - ca: the CA is near its end: rotateCa();
 * - trust: the configuration does not trust the serving certificate's CA yet: patch its caBundle;
 * - leaf: the serving certificate is near its end, names other hosts, or was signed by the previous CA
 *   (and the current one is trusted now): renewLeaf();
 * - none.
 */
export type Step = 'new' | 'ca' | 'trust' | 'leaf' | 'none';

export function nextStep(bundle: CertBundle, hosts: readonly string[], lifetimes: Lifetimes, now: number, trusted: string): Step {
  let ca: X509Certificate;
  let leaf: X509Certificate;
  try {
    ca = new X509Certificate(firstCertificate(bundle.caCert));
    leaf = new X509Certificate(bundle.cert);
    if (!ca.checkPrivateKey(createPrivateKey(bundle.caKey))) return 'new';
    if (!leaf.checkPrivateKey(createPrivateKey(bundle.key))) return 'new';
  } catch {
    return 'new';
  }
  const caLife = window(ca);
  if (now >= caLife.to || !ca.ca) return 'new';
  if (due(caLife, now) || caLife.to - caLife.from > lifetimes.certMs * caFactor * 1.5) return 'ca';
  const trustedPems = splitPem(trusted);
  const issuedByCurrent = leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
  const issuer = issuedByCurrent
    ? ca
    : splitPem(bundle.caBundle)
        .map((pem) => new X509Certificate(pem))
        .find((c) => leaf.checkIssued(c) && leaf.verify(c.publicKey));
  if (issuer === undefined) return trustedPems.includes(firstCertificate(bundle.caCert)) ? 'leaf' : 'trust';
  if (!trustedPems.some((pem) => new X509Certificate(pem).fingerprint256 === issuer.fingerprint256)) return 'trust';
  if (!issuedByCurrent) return trustedPems.includes(firstCertificate(bundle.caCert)) ? 'leaf' : 'trust';
  const life = window(leaf);
  if (due(life, now) || life.to - life.from > lifetimes.certMs * 1.5) return 'leaf';
  const names = (leaf.subjectAltName ?? '').split(', ');
  if (!hosts.every((host) => names.includes(isIp(host) ? `IP Address:${host}` : `DNS:${host}`))) return 'leaf';
  return 'none';
}

/** When the bundle next needs renewing (epoch ms); now or earlier when it is already due. */
export function nextRenewal(bundle: CertBundle, now: number): number {
  try {
    const times = [window(new X509Certificate(firstCertificate(bundle.caCert))), window(new X509Certificate(bundle.cert))].map(
      (life) => life.to - (life.to - life.from) * renewShare,
    );
    return Math.min(...times);
  } catch {
    return now;
  }
}

/** A certificate's lifetime as we made it: from its issue, not from its backdated start. */
function window(cert: X509Certificate): { from: number; to: number } {
  return { from: Date.parse(cert.validFrom) + backdateMs, to: Date.parse(cert.validTo) };
}

function due(life: { from: number; to: number }, now: number): boolean {
  return now >= life.to - (life.to - life.from) * renewShare;
}

function stillValid(pem: string, now: number): boolean {
  try {
    return Date.parse(new X509Certificate(pem).validTo) > now;
  } catch {
    return false;
  }
}

function firstCertificate(pem: string): string {
  return splitPem(pem)[0] ?? pem;
}

/** The PEM blocks of a bundle. */
export function splitPem(pem: string): string[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\r?\n?/g)].map((m) => m[0].replace(/\r?\n?$/, '\n'));
}

function isIp(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

interface Pair {
  readonly cert: string;
  readonly key: string;
}

function rsaKeys(): { publicKey: forge.pki.PublicKey; privateKey: forge.pki.rsa.PrivateKey; pem: string } {
  // node:crypto makes the key (fast, native); forge only builds and signs the certificate.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  return {
    privateKey: forge.pki.privateKeyFromPem(pem),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    pem,
  };
}

function base(publicKey: forge.pki.PublicKey, lifetimeMs: number, now: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // Positive, 16 bytes.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  // Valid a little before now, for clocks a little behind ours.
  cert.validity.notBefore = new Date(now - backdateMs);
  cert.validity.notAfter = new Date(now + lifetimeMs);
  return cert;
}

function makeCa(lifetimeMs: number, now: number): Pair {
  const keys = rsaKeys();
  const cert = base(keys.publicKey, lifetimeMs, now);
  const name = [{ name: 'commonName', value: `kube-ecrlogin-webhook-ca-${Math.floor(now / 1000)}` }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}

function makeLeaf(hosts: readonly string[], ca: Pair, lifetimeMs: number, now: number): Pair {
  const caCert = forge.pki.certificateFromPem(firstCertificate(ca.cert));
  const caKey: forge.pki.rsa.PrivateKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = rsaKeys();
  // Never beyond the CA's own end.
  const cert = base(keys.publicKey, Math.min(lifetimeMs, caCert.validity.notAfter.getTime() - now), now);
  cert.setSubject([{ name: 'commonName', value: hosts[0] ?? 'kube-ecrlogin-webhook' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: hosts.map((host) => (isIp(host) ? { type: 7, ip: host } : { type: 2, value: host })) },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}
