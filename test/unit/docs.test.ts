// The Markdown documents: every relative link names a file that exists, every #anchor a heading of
// the document it points into (GitHub's slugs), and the README stays a landing page.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

const root = resolve(import.meta.dirname, '..', '..');
const skipped = new Set(['node_modules', 'dist', '.cache', '.git']);

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (skipped.has(entry.name)) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/** The text outside fenced code blocks, line by line (a `#` in a shell block is no heading). */
function prose(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (/^\s*```/.test(line)) {
      fenced = !fenced;
      return false;
    }
    return !fenced;
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const slug = (heading[1] ?? '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${String(count)}`);
  }
  return result;
}

/** Relative link targets of a document (inline links and images), outside code. */
function links(text: string): string[] {
  const targets: string[] = [];
  for (const line of prose(text)) {
    const outsideCode = line.replace(/`[^`]*`/g, '');
    for (const match of outsideCode.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1] ?? '';
      if (!/^[a-z][a-z0-9+.-]*:/i.test(target)) targets.push(target);
    }
  }
  return targets;
}

describe('the Markdown documents', () => {
  it('finds the slugs GitHub makes', () => {
    const text = "# Title\n## The controller's IAM role, copy-paste\n### `kube-ecrlogin doctor`\n```sh\n# not a heading\n```\n## Events\n## Events\n";
    assert.deepEqual([...anchors(text)], ['title', 'the-controllers-iam-role-copy-paste', 'kube-ecrlogin-doctor', 'events', 'events-1']);
    assert.deepEqual(links('[a](b.md#c) `[x](y.md)` [web](https://example.com) ![img](i.svg)'), ['b.md#c', 'i.svg']);
  });

  for (const file of markdownFiles(root)) {
    const name = relative(root, file);
    it(`${name}: every relative link and anchor resolves`, () => {
      const text = readFileSync(file, 'utf8');
      const broken: string[] = [];
      for (const target of links(text)) {
        const [path = '', anchor] = target.split('#', 2);
        const destination = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
        if (!existsSync(destination)) {
          broken.push(`${target}: no such file`);
          continue;
        }
        if (anchor === undefined || anchor === '') continue;
        if (statSync(destination).isDirectory() || !destination.endsWith('.md')) {
          broken.push(`${target}: an anchor into something that is not a Markdown file`);
          continue;
        }
        if (!anchors(readFileSync(destination, 'utf8')).has(anchor)) broken.push(`${target}: no such heading`);
      }
      assert.deepEqual(broken, []);
    });
  }

  it('every YAML document that has metadata names its apiVersion and kind, so that it applies as shown', () => {
    const incomplete: string[] = [];
    for (const file of markdownFiles(root)) {
      const text = readFileSync(file, 'utf8');
      for (const block of text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)) {
        const line = text.slice(0, block.index).split('\n').length;
        for (const document of parseAllDocuments(block[1] ?? '')) {
          if (!('errors' in document) || document.errors.length > 0) continue; // not for kubectl: config snippets with placeholders
          const value: unknown = document.toJS();
          if (typeof value !== 'object' || value === null || Array.isArray(value) || !('metadata' in value)) continue;
          if (!('apiVersion' in value) || !('kind' in value)) incomplete.push(`${relative(root, file)}:${String(line)}`);
        }
      }
    }
    assert.deepEqual(incomplete, []);
  });

  it('README.md is a landing page: at most 20 KiB, its sections in the order a user needs them', () => {
    const size = statSync(join(root, 'README.md')).size;
    assert.ok(size <= 20 * 1024, `README.md is ${String(size)} bytes`);
    const sections = prose(readFileSync(join(root, 'README.md'), 'utf8'))
      .filter((line) => line.startsWith('## '))
      .map((line) => line.slice(3));
    const order = [
      'Quick start',
      'Install',
      'Annotations',
      'Identity',
      'Policy',
      'Troubleshooting',
      'Operations',
      'Compared with the alternatives',
      'Documentation',
      'Development',
    ];
    assert.deepEqual(
      sections.filter((section) => order.includes(section)),
      order,
    );
  });

  it("src/README.md's kube-ecrlogin doctor section names every status an object can have (src/doctor.ts ObjectStatus)", () => {
    const union = /export type ObjectStatus =([^;]*);/.exec(readFileSync(join(root, 'src', 'doctor.ts'), 'utf8'))?.[1] ?? '';
    const statuses = [...union.matchAll(/'([^']+)'/g)].map((match) => match[1] ?? '');
    assert.ok(statuses.length >= 9, `the union read from src/doctor.ts: ${statuses.join(', ')}`);
    const text = readFileSync(join(root, 'src', 'README.md'), 'utf8');
    const section = text.slice(text.indexOf('### kube-ecrlogin doctor'), text.indexOf('\n### ', text.indexOf('### kube-ecrlogin doctor') + 1));
    assert.deepEqual(
      statuses.filter((status) => !section.includes(`\`${status}\``)),
      [],
      'statuses the section does not name',
    );
  });
});
