// The webhook's certificates: what is made, and which step comes next. Pure (no cluster).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { newBundle, nextStep, renewLeaf, rotateCa, splitPem } from '../../../src/admission/certs.ts';

const hosts = ['kube-ecrlogin-webhook.kube-ecrlogin.svc', '127.0.0.1'];
const hour = 3_600_000;
const lifetimes = { certMs: hour };
const t0 = Date.parse('2026-11-30T12:00:00Z');

describe('webhook certificates', () => {
  const fresh = newBundle(hosts, lifetimes, t0);

  it('a new bundle is a CA and a serving certificate it signed, naming every host, for the lifetime asked', () => {
    const ca = new X509Certificate(fresh.caCert);
    const leaf = new X509Certificate(fresh.cert);
    assert.equal(ca.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    assert.equal(leaf.subjectAltName, 'DNS:kube-ecrlogin-webhook.kube-ecrlogin.svc, IP Address:127.0.0.1');
    assert.equal(Date.parse(leaf.validTo), t0 + hour);
    assert.equal(Date.parse(ca.validTo), t0 + 4 * hour);
    assert.equal(splitPem(fresh.caBundle).length, 1);
  });

  const cases: { name: string; at: number; trusted: () => string; bundle?: () => typeof fresh; want: string }[] = [
    { name: 'a fresh bundle the configuration does not trust yet: trust it first', at: t0, trusted: () => '', want: 'trust' },
    { name: 'a fresh bundle, trusted: nothing to do', at: t0, trusted: () => fresh.caBundle, want: 'none' },
    { name: 'a serving certificate with a third of its life left: renew it', at: t0 + 41 * 60_000, trusted: () => fresh.caBundle, want: 'leaf' },
    { name: 'a CA with a third of its life left: a new CA', at: t0 + 3 * hour, trusted: () => fresh.caBundle, want: 'ca' },
    { name: 'an expired CA: start again', at: t0 + 5 * hour, trusted: () => fresh.caBundle, want: 'new' },
    {
      name: 'a serving certificate that lacks a host: renew it',
      at: t0,
      trusted: () => fresh.caBundle,
      bundle: () => renewLeaf(fresh, ['other.svc'], lifetimes, t0),
      want: 'leaf',
    },
    {
      name: 'a CA key that does not match the CA: start again',
      at: t0,
      trusted: () => fresh.caBundle,
      bundle: () => ({ ...fresh, caKey: newBundle(hosts, lifetimes, t0).caKey }),
      want: 'new',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(nextStep(c.bundle?.() ?? fresh, hosts, lifetimes, c.at, c.trusted()), c.want);
    });
  }

  it('replaces a CA in steps: trust the new one beside the old, then a serving certificate it signed', () => {
    const at = t0 + 3 * hour;
    const rotated = rotateCa(fresh, lifetimes, at);
    assert.equal(splitPem(rotated.caBundle).length, 2, 'new and old CA trusted together');
    assert.equal(rotated.cert, fresh.cert, 'the serving certificate stays until the new CA is trusted');
    assert.equal(nextStep(rotated, hosts, lifetimes, at, fresh.caBundle), 'trust');
    assert.equal(nextStep(rotated, hosts, lifetimes, at, rotated.caBundle), 'leaf');
    const renewed = renewLeaf(rotated, hosts, lifetimes, at);
    assert.ok(new X509Certificate(renewed.cert).checkIssued(new X509Certificate(rotated.caCert)));
    assert.equal(nextStep(renewed, hosts, lifetimes, at, rotated.caBundle), 'none');
  });
});
