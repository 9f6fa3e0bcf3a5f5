// What a tenant's Events say, and where (issue 14 item 10, issue 15): everything about a Namespace is
// said in full inside it, on its `default` ServiceAccount; `default`, where every tenant's Warnings
// would sit side by side, gets only the reason and the namespace's name, never a registry, an account
// or a role. On the real API server, with the messages that carry the most: a policy denial naming a
// role, a refresh failing to assume one, an invalid registry host with an account in it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type * as k8s from '@kubernetes/client-node';
import { uniqueName } from '../support/cluster.ts';
import { eventually } from '../support/eventually.ts';
import { createServedNamespace, withAwsAndController } from '../support/controller.ts';
import { core, namespaceEvents, readSecret } from '../support/objects.ts';

// Each tenant's account, role and registry are its own; none may show up anywhere but in its namespace.
const tenants = {
  denied: { account: '210987654321', role: 'arn:aws:iam::210987654321:role/tenant-denied-pull' },
  failing: { account: '320987654321', role: 'arn:aws:iam::320987654321:role/tenant-failing-pull' },
  invalid: { account: '430987654321' },
  served: { account: '540987654321' },
};
const host = (account: string, region = 'us-east-1'): string => `${account}.dkr.ecr.${region}.amazonaws.com`;

// Roles are allowed only in the failing tenant's account: the denied tenant's role is refused by the policy.
const config = `rules:\n  - name: everyone\n    namespaces: { names: ["*"] }\n    roleArns: ["arn:aws:iam::${tenants.failing.account}:role/*"]\n`;

describe('Events about a Namespace', () => {
  const env = withAwsAndController({ config });

  /** kube-ecrlogin's Events in `default` about one Namespace. */
  const inDefault = async (ns: string): Promise<k8s.CoreV1Event[]> =>
    (await core().listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.kind=Namespace,involvedObject.name=${ns}` })).items.filter(
      (e) => e.source?.component === 'kube-ecrlogin' || e.reportingComponent === 'kube-ecrlogin',
    );

  it("are said in full in the namespace, and `default` gets only the reason: no tenant's registry, account or role", async () => {
    const ns = { denied: uniqueName('ev-denied'), failing: uniqueName('ev-failing'), invalid: uniqueName('ev-invalid'), served: uniqueName('ev-served') };
    // A role the AWS test server lets nobody assume: the refresh fails, naming it.
    env.aws.setRole({ roleArn: tenants.failing.role, trustedPrincipals: ['arn:aws:iam::999999999999:user/someone-else'] });
    await createServedNamespace(env.controller, ns.denied, { 'ecr-login/server': host(tenants.denied.account), 'ecr-login/role-arn': tenants.denied.role });
    await createServedNamespace(env.controller, ns.failing, { 'ecr-login/server': host(tenants.failing.account), 'ecr-login/role-arn': tenants.failing.role });
    // A region that fits the pattern and does not exist: invalid, and the message names the host.
    await createServedNamespace(env.controller, ns.invalid, { 'ecr-login/server': host(tenants.invalid.account, 'us-east-7') });
    await createServedNamespace(env.controller, ns.served, { 'ecr-login/server': host(tenants.served.account) });

    // In each namespace, the whole story, its own details included.
    const said = async (name: string, reason: string): Promise<string> =>
      eventually(`${reason} in ${name}`, async () => {
        const found = (await namespaceEvents(name)).find((e) => e.reason === reason);
        assert.ok(found, `no ${reason} yet`);
        return found.message ?? '';
      });
    assert.match(await said(ns.denied, 'PolicyDenied'), new RegExp(`role ${tenants.denied.role} is not allowed`));
    assert.match(await said(ns.failing, 'RefreshFailed'), new RegExp(tenants.failing.account));
    assert.match(await said(ns.invalid, 'InvalidAnnotation'), new RegExp(tenants.invalid.account));
    await eventually('the served Secret', () => readSecret(ns.served, 'ecr-login'));
    assert.match(await said(ns.served, 'CredentialsIssued'), new RegExp(tenants.served.account));

    // In `default`: each Warning once, by reason and namespace only; nothing for the served namespace.
    const warned = { [ns.denied]: 'PolicyDenied', [ns.failing]: 'RefreshFailed', [ns.invalid]: 'InvalidAnnotation' };
    for (const [name, reason] of Object.entries(warned)) {
      const events = await eventually(`the ${reason} Event about Namespace ${name} in default`, async () => {
        const found = await inDefault(name);
        assert.ok(found.some((e) => e.reason === reason));
        return found;
      });
      for (const event of events) {
        assert.equal(event.type, 'Warning', `${event.reason}: only Warnings reach default`);
        assert.equal(event.message, `${event.reason ?? ''} in namespace ${name}: its Events say why (kubectl get events -n ${name})`);
      }
    }
    assert.deepEqual(
      (await inDefault(ns.served)).map((e) => `${e.reason}: ${e.message}`),
      [],
      'a served namespace leaves nothing in default',
    );

    // No tenant's account, role or registry in anything kube-ecrlogin said in default, nor in another tenant's namespace.
    const secrets = Object.values(tenants).flatMap((tenant) => [tenant.account, ...('role' in tenant ? [tenant.role] : [])]);
    const all = (await core().listNamespacedEvent({ namespace: 'default' })).items.filter((e) => e.source?.component === 'kube-ecrlogin');
    for (const event of all) {
      for (const secret of secrets) assert.ok(!(event.message ?? '').includes(secret), `default: ${event.reason} "${event.message}" names ${secret}`);
    }
    for (const [key, name] of Object.entries(ns)) {
      const others = Object.entries(tenants)
        .filter(([tenant]) => tenant !== key)
        .map(([, tenant]) => tenant.account);
      const messages = (await core().listNamespacedEvent({ namespace: name })).items.map((e) => e.message ?? '');
      for (const message of messages) for (const other of others) assert.ok(!message.includes(other), `${name}: "${message}" names another tenant's ${other}`);
    }
  });
});
