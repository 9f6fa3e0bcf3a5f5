import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dockerfileNodeOptions, imageRuntime, quantityMiB, resolveHeapShare } from '../../bench/image-runtime.ts';

describe('the benchmark runs the controller with the image’s Node.js flags', () => {
  it('reads NODE_OPTIONS from an ENV instruction, quoted or not', () => {
    assert.deepEqual(dockerfileNodeOptions('ENV A=1 \\\n    NODE_OPTIONS="--x --y=2" \\\n    B=3\n'), ['--x', '--y=2']);
    assert.deepEqual(dockerfileNodeOptions('ENV NODE_OPTIONS=--x\n'), ['--x']);
    assert.throws(() => dockerfileNodeOptions('ENV A=1\n'), /no NODE_OPTIONS/);
  });

  it('resolves a heap share against the memory limit, as Node does in a container', () => {
    assert.equal(quantityMiB('384Mi'), 384);
    assert.equal(quantityMiB('1Gi'), 1024);
    assert.deepEqual(resolveHeapShare(['--a', '--max-old-space-size-percentage=50'], 384), ['--a', '--max-old-space-size=192']);
  });

  it('finds the Dockerfile’s flags and the base Deployment’s limit in this repository', () => {
    const runtime = imageRuntime();
    assert.ok(runtime.memoryLimitMiB > 0);
    assert.ok(
      runtime.nodeArgs.some((arg) => arg.startsWith('--max-semi-space-size=')),
      runtime.nodeArgs.join(' '),
    );
    assert.ok(!runtime.nodeArgs.some((arg) => arg.startsWith('--max-old-space-size-percentage')), 'resolved');
  });
});
