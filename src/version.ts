// The version of this build of kube-ecrlogin, from the package.json beside src/ or dist/ (the image
// copies it next to its bundle). A leaf: it imports node: built-ins only, so the entry point may load
// it before checking the Node.js version.

import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function version(): string {
  if (cached === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    cached = pkg.version;
  }
  return cached;
}
