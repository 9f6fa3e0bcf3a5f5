// Which Secrets a new Pod gets, and the patch that adds them. Pure.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { V1ServiceAccount } from '@kubernetes/client-node';
import { admitPod } from '../../../src/admission/decide.ts';
import { defaultSettings } from '../../../src/config/settings.ts';

const east = '111122223333.dkr.ecr.us-east-1.amazonaws.com';
const ns = (annotations: Record<string, string>) => ({ metadata: { name: 'team', annotations } });
const sa = (name: string, annotations: Record<string, string> = {}): V1ServiceAccount => ({ metadata: { name, namespace: 'team', annotations } });

describe('admitPod', () => {
  it('a Pod of default in an annotated namespace, naming no Secret, gets the list', () => {
    const { wanted, patch } = admitPod(
      { serviceAccount: 'default', imagePullSecrets: undefined },
      ns({ 'ecr-login/server': east }),
      [sa('default')],
      defaultSettings,
    );
    assert.deepEqual(wanted, ['ecr-login']);
    assert.deepEqual(patch, [{ op: 'add', path: '/spec/imagePullSecrets', value: [{ name: 'ecr-login' }] }]);
  });

  it('a Pod with Secrets of its own gets ours appended after them', () => {
    const { patch } = admitPod({ serviceAccount: 'default', imagePullSecrets: ['mine'] }, ns({ 'ecr-login/server': east }), [sa('default')], defaultSettings);
    assert.deepEqual(patch, [{ op: 'add', path: '/spec/imagePullSecrets/-', value: { name: 'ecr-login' } }]);
  });

  it('a Pod that lists our Secret already gets no patch', () => {
    assert.deepEqual(admitPod({ serviceAccount: 'default', imagePullSecrets: ['ecr-login'] }, ns({ 'ecr-login/server': east }), [], defaultSettings).patch, []);
  });

  it("a Pod of an annotated ServiceAccount gets that ServiceAccount's Secret, and the namespace's when listed", () => {
    const { wanted } = admitPod(
      { serviceAccount: 'robot', imagePullSecrets: undefined },
      ns({ 'ecr-login/server': east, 'ecr-login/service-accounts': '*' }),
      [sa('robot', { 'ecr-login/server': east })],
      defaultSettings,
    );
    assert.deepEqual(wanted, ['ecr-login', 'ecr-login-robot']);
  });

  it('a Pod in a namespace that asks for nothing, or with an invalid annotation, gets nothing', () => {
    assert.deepEqual(admitPod({ serviceAccount: 'default', imagePullSecrets: undefined }, ns({}), [sa('default')], defaultSettings).patch, []);
    assert.deepEqual(
      admitPod({ serviceAccount: 'default', imagePullSecrets: undefined }, ns({ 'ecr-login/server': 'docker.io' }), [], defaultSettings).patch,
      [],
    );
  });
});
