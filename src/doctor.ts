// `kube-ecrlogin doctor` (placeholder until the operations work lands: reports that it is not built).

import type { Options } from './config/options.ts';

export function doctor(_options: Options, out: NodeJS.WritableStream): Promise<number> {
  out.write('kube-ecrlogin doctor is not implemented yet\n');
  return Promise.resolve(1);
}
