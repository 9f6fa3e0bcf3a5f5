// The prometheus component's alerting rules, checked by Prometheus's own promtool (built from the Go
// module proxy by test/promtool/build.sh): the rules parse and their templates are valid, and each
// alert fires, with its labels and expanded annotations, exactly in the scenario it is meant for
// (prometheus-rules.promtool.yaml).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { repoRoot } from '../cluster/controlplane.ts';
import { run } from './support.ts';

const promtool = join(repoRoot, '.cache', 'promtool');
const ruleFile = join(repoRoot, 'kustomize', 'components', 'prometheus', 'prometheus_rule.yaml');
const unitTests = join(import.meta.dirname, 'prometheus-rules.promtool.yaml');

/** The PrometheusRule's groups as a Prometheus rule file. */
function ruleGroups(transform: (text: string) => string = (text) => text): string {
  const rule = parse(transform(readFileSync(ruleFile, 'utf8'))) as { spec: { groups: unknown[] } };
  return stringify({ groups: rule.spec.groups });
}

describe('the PrometheusRule, by promtool', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kube-ecrlogin-promtool-'));
    copyFileSync(unitTests, join(dir, 'tests.yaml'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses, with valid expressions and templates', async () => {
    writeFileSync(join(dir, 'rules.yaml'), ruleGroups());
    const result = await run(promtool, ['check', 'rules', join(dir, 'rules.yaml')]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS: 5 rules found/);
  });

  it('fires each alert in its scenario, with the expected labels and annotations, and not before', async () => {
    writeFileSync(join(dir, 'rules.yaml'), ruleGroups());
    const result = await run(promtool, ['test', 'rules', join(dir, 'tests.yaml')]);
    assert.equal(result.code, 0, result.stdout + result.stderr);
  });

  it('the unit tests catch a changed threshold (a control: they can fail)', async () => {
    writeFileSync(
      join(dir, 'rules.yaml'),
      ruleGroups((text) => text.replace('time() < 3600', 'time() < 600')),
    );
    const result = await run(promtool, ['test', 'rules', join(dir, 'tests.yaml')]);
    assert.notEqual(result.code, 0);
    assert.match(result.stdout + result.stderr, /KubeEcrloginCredentialExpiringSoon/);
  });
});
