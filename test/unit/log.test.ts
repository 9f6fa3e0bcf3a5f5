// Redaction: every kind of secret the controller handles, logged every way a caller might log it,
// through the real winston logger, never reaches the output; the fields around it do.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { buildDockerConfig } from '../../src/dockerconfig.ts';
import { createLogger, errorMessage, redact, redactString, type Logger } from '../../src/log.ts';

/** A logger writing JSON lines into memory. */
function capture(): { log: Logger; lines: () => string[]; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level: 'debug', stream });
  const text = (): string => chunks.join('');
  return {
    log,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line !== ''),
  };
}

// Secrets shaped like the real ones.
const ecrPassword = Buffer.from(
  JSON.stringify({
    payload: 'ZmFrZS1wYXlsb2FkLWZvci10ZXN0cy1vbmx5LW5vdC1hLXJlYWwtZWNyLXRva2Vu'.repeat(4),
    datakey: 'AQEBAHhh3s0mEkeyMaterialThatIsNotRealAtAll',
    version: '2',
    type: 'DATA_KEY',
    expiration: 1_735_732_800,
  }),
).toString('base64');
const auth = Buffer.from(`AWS:${ecrPassword}`).toString('base64');
const dockerConfigJson = buildDockerConfig([{ host: '111122223333.dkr.ecr.us-east-1.amazonaws.com', username: 'AWS', password: ecrPassword }]);
const dockerConfigBase64 = Buffer.from(dockerConfigJson).toString('base64');
const secretAccessKey = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const sessionToken = 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampleSessionTokenMaterial0123456789abcdefghij==';
const jwt = `${Buffer.from('{"alg":"RS256","kid":"k1"}').toString('base64url')}.${Buffer.from('{"aud":["sts.amazonaws.com"],"sub":"system:serviceaccount:team-a:default"}').toString('base64url')}.c2lnbmF0dXJlLWJ5dGVzLW5vdC1yZWFs`;
const kubeBearer = 'sha256~Xq3nR7e1u0pKxExampleBearerTokenValue_abc123';
const accessKeyId = 'AKIAIOSFODNN7EXAMPLE';
const sessionKeyId = 'ASIAY34FZKBOKMUTVV7A';

const secrets: Record<string, string> = {
  'the ECR password': ecrPassword,
  'the base64 auth value': auth,
  'the .dockerconfigjson password': ecrPassword,
  'the base64 .dockerconfigjson': dockerConfigBase64,
  'the AWS secret access key': secretAccessKey,
  'the AWS session token': sessionToken,
  'the ServiceAccount JWT': jwt,
  'the kube bearer token': kubeBearer,
  'the AKIA access key id': accessKeyId,
  'the ASIA access key id': sessionKeyId,
};

/** Every way a caller might pass a secret to the logger. */
const attempts: { name: string; write: (log: Logger) => void }[] = [
  {
    name: 'as fields under their natural names',
    write: (log) =>
      log.info('Obtained token', {
        namespace: 'team-a',
        name: 'ecr-login',
        password: ecrPassword,
        auth,
        token: ecrPassword,
        secretAccessKey,
        sessionToken,
        accessKeyId,
        webIdentityToken: jwt,
        idToken: jwt,
        '.dockerconfigjson': dockerConfigJson,
      }),
  },
  {
    name: 'as an SDK AssumeRole output',
    write: (log) =>
      log.debug('AssumeRole answered', {
        namespace: 'team-a',
        name: 'ecr-login',
        output: {
          Credentials: { AccessKeyId: sessionKeyId, SecretAccessKey: secretAccessKey, SessionToken: sessionToken, Expiration: new Date(0) },
          AssumedRoleUser: { Arn: 'arn:aws:sts::111122223333:assumed-role/r/s' },
        },
      }),
  },
  {
    name: 'as the credentials object the SDK clients take',
    write: (log) =>
      log.debug('Client', {
        namespace: 'team-a',
        name: 'ecr-login',
        config: { region: 'us-east-1', credentials: { accessKeyId: sessionKeyId, secretAccessKey, sessionToken } },
      }),
  },
  {
    name: 'as a GetAuthorizationToken output',
    write: (log) =>
      log.debug('GetAuthorizationToken answered', {
        namespace: 'team-a',
        name: 'ecr-login',
        output: { authorizationData: [{ authorizationToken: auth, proxyEndpoint: 'https://111122223333.dkr.ecr.us-east-1.amazonaws.com' }] },
      }),
  },
  {
    name: 'as a whole Secret object',
    write: (log) =>
      log.info('Applied Secret', {
        namespace: 'team-a',
        name: 'ecr-login',
        secret: {
          metadata: { name: 'ecr-login', namespace: 'team-a' },
          type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': dockerConfigBase64 },
        },
      }),
  },
  {
    name: 'as a Secret with stringData',
    write: (log) => log.info('Applied Secret', { namespace: 'team-a', name: 'ecr-login', body: { stringData: { '.dockerconfigjson': dockerConfigJson } } }),
  },
  {
    name: 'as a .dockerconfigjson string under an innocent name',
    write: (log) => log.debug('Built config', { namespace: 'team-a', name: 'ecr-login', config: dockerConfigJson }),
  },
  {
    name: 'as logins',
    write: (log) => log.debug('Logins', { namespace: 'team-a', name: 'ecr-login', logins: [{ host: 'h', username: 'AWS', password: ecrPassword }] }),
  },
  {
    name: 'as request headers',
    write: (log) =>
      log.debug('Request', {
        namespace: 'team-a',
        name: 'ecr-login',
        headers: { Authorization: `Bearer ${kubeBearer}`, 'X-Amz-Security-Token': sessionToken },
      }),
  },
  {
    name: 'as a Bearer header inside a message',
    write: (log) => log.warn(`Request failed with header Authorization: Bearer ${kubeBearer}`, { namespace: 'team-a', name: 'ecr-login' }),
  },
  {
    name: 'as a JWT inside an error message',
    write: (log) =>
      log.error('Web identity failed', { namespace: 'team-a', name: 'ecr-login', error: new Error(`InvalidIdentityToken: token ${jwt} has expired`) }),
  },
  {
    name: 'as an Error passed as the metadata',
    write: (log) =>
      log.error('Token failed', Object.assign(new Error(`docker login -u AWS -p ${ecrPassword} failed`), { namespace: 'team-a', name: 'ecr-login' })),
  },
  {
    name: 'as an Error logged on its own',
    write: (log) => log.error(Object.assign(new Error(`token QVdTO${auth.slice(5)} refused`), { namespace: 'team-a', name: 'ecr-login' })),
  },
  {
    name: 'as the decoded AWS:password pair in a message',
    write: (log) => log.warn(`login pair AWS:${ecrPassword} rejected`, { namespace: 'team-a', name: 'ecr-login' }),
  },
  {
    name: 'as an apiserver error that echoes the Secret body',
    write: (log) =>
      log.error('Apply failed', {
        namespace: 'team-a',
        name: 'ecr-login',
        error: `Secret "ecr-login" is invalid: {"kind":"Secret","data":{".dockerconfigjson":"${dockerConfigBase64}"}}`,
      }),
  },
  {
    name: 'as an apiserver validation error that quotes the value',
    write: (log) =>
      log.error('Apply failed', { namespace: 'team-a', name: 'ecr-login', error: `data[.dockerconfigjson]: Invalid value: "${dockerConfigBase64}": too long` }),
  },
  {
    name: 'as access key ids inside a message',
    write: (log) =>
      log.warn(`InvalidClientTokenId: The security token included in the request is invalid (key ${accessKeyId}, session ${sessionKeyId})`, {
        namespace: 'team-a',
        name: 'ecr-login',
      }),
  },
  {
    name: 'as the raw ECR password in a message',
    write: (log) => log.warn(`password ${ecrPassword} was refused by the registry`, { namespace: 'team-a', name: 'ecr-login' }),
  },
  {
    name: 'deep inside nested objects and arrays',
    write: (log) =>
      log.debug('Deep', { namespace: 'team-a', name: 'ecr-login', a: [{ b: { c: [{ d: { sessionToken, e: [`Bearer ${kubeBearer}`, jwt] } }] } }] }),
  },
  {
    name: 'nested deeper than the redaction walks',
    write: (log) => {
      let deep: Record<string, unknown> = { password: ecrPassword, sessionToken };
      for (let i = 0; i < 12; i++) deep = { inner: deep };
      log.debug('Very deep', { namespace: 'team-a', name: 'ecr-login', deep });
    },
  },
  {
    name: 'through errorMessage()',
    write: (log) =>
      log.error('Failed', { namespace: 'team-a', name: 'ecr-login', error: errorMessage(new Error(`STS said no to ${jwt} with AWS:${ecrPassword}`)) }),
  },
];

describe('log redaction', () => {
  for (const attempt of attempts) {
    it(`no secret reaches the output when logged ${attempt.name}`, () => {
      const { log, lines, text } = capture();
      attempt.write(log);
      const out = text();
      for (const [kind, value] of Object.entries(secrets)) {
        assert.ok(!out.includes(value), `${kind} was written: ${out}`);
        // Not even a long piece of it.
        assert.ok(!out.includes(value.slice(8, 40)), `part of ${kind} was written: ${out}`);
      }
      assert.equal(lines().length, 1, 'one JSON line');
      const line = JSON.parse(lines()[0]!) as Record<string, unknown>;
      assert.equal(line['namespace'], 'team-a');
      assert.equal(line['name'], 'ecr-login');
      assert.equal(line['logger'], 'kube-ecrlogin');
      assert.equal(typeof line['timestamp'], 'string');
      assert.ok(typeof line['message'] === 'string' && line['message'].length > 0);
    });
  }

  it('keeps what is not secret: registry hosts, role ARNs, usernames, times', () => {
    const { log, text } = capture();
    log.info('Applied Secret', {
      namespace: 'team-a',
      name: 'ecr-login',
      registries: '111122223333.dkr.ecr.us-east-1.amazonaws.com',
      role: 'arn:aws:iam::111122223333:role/team-a-puller',
      username: 'AWS',
      expiresAt: '2025-01-01T12:00:00.000Z',
      password: '',
    });
    const line = JSON.parse(text()) as Record<string, unknown>;
    assert.equal(line['registries'], '111122223333.dkr.ecr.us-east-1.amazonaws.com');
    assert.equal(line['role'], 'arn:aws:iam::111122223333:role/team-a-puller');
    assert.equal(line['username'], 'AWS');
    assert.equal(line['expiresAt'], '2025-01-01T12:00:00.000Z');
    assert.equal(line['password'], '', 'an empty value is shown as empty, not as a redaction');
  });

  it("does not change the caller's objects", () => {
    const fields = { namespace: 'team-a', name: 'x', nested: { password: 'hunter2' } };
    const { log } = capture();
    log.info('x', fields);
    assert.equal(fields.nested.password, 'hunter2');
  });

  it('redact() survives cycles and depth', () => {
    const cyclic: Record<string, unknown> = { token: 'abc' };
    cyclic['self'] = cyclic;
    assert.doesNotThrow(() => JSON.stringify(redact(cyclic)));
  });

  it('redactString leaves ordinary text alone', () => {
    const text = 'Applied Secret team-a/ecr-login for 111122223333.dkr.ecr.us-east-1.amazonaws.com (role arn:aws:iam::111122223333:role/x)';
    assert.equal(redactString(text), text);
  });
});
