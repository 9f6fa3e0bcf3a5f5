// A local CA and the registry's serving certificate for the ECR hosts, made with the openssl command
// line. containerd trusts the CA through certs.d/<host>/hosts.toml; nothing else does.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RegistryTls {
  readonly caFile: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Writes ca.crt, tls.crt and tls.key into dir, for these host names. */
export function makeRegistryTls(dir: string, hosts: readonly string[]): RegistryTls {
  mkdirSync(dir, { recursive: true });
  const file = (name: string): string => join(dir, name);
  const openssl = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl([
    'req',
    '-x509',
    ...ecKey,
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=kube-ecrlogin kubelet test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  openssl(['req', ...ecKey, '-keyout', file('tls.key'), '-out', file('tls.csr'), '-subj', '/CN=ecr-shaped registry']);
  writeFileSync(
    file('tls.ext'),
    [
      `subjectAltName=${hosts.map((host) => `DNS:${host}`).join(',')}`,
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  openssl([
    'x509',
    '-req',
    '-in',
    file('tls.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('tls.ext'),
    '-out',
    file('tls.crt'),
  ]);
  return {
    caFile: file('ca.crt'),
    ca: readFileSync(file('ca.crt'), 'utf8'),
    cert: readFileSync(file('tls.crt'), 'utf8'),
    key: readFileSync(file('tls.key'), 'utf8'),
  };
}
