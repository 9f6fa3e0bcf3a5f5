// The shape of src/, checked by `make lint` (dependency-cruiser): no import cycles, type-only ones
// included, and the adapters (src/kube, src/aws) never import the domain. Names both need (an object
// reference, the field manager, a JSON Patch operation) live in leaf modules the domain imports.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'A cycle means a name lives in the wrong module: move it to a leaf both import.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'adapters-import-no-domain',
      severity: 'error',
      comment: 'src/kube and src/aws know Kubernetes and AWS, not kube-ecrlogin: the domain imports them, never the reverse.',
      from: { path: '^src/(kube|aws)/' },
      to: { path: '^src/(controller|admission)/|^src/(annotations|policy|broker|app|doctor|cli|uninstall|naming|refresh|dockerconfig)\\.ts$' },
    },
    {
      name: 'config-imports-no-domain',
      severity: 'error',
      comment:
        'src/config parses flags and the ConfigMap into typed settings (and watches it through the kube adapter); validators it needs live in leaf modules.',
      from: { path: '^src/config/' },
      to: { path: '^src/(controller|admission)/|^src/(annotations|policy|broker|app|doctor|cli)\\.ts$' },
    },
    {
      name: 'only-the-cli-imports-the-composition-root',
      severity: 'error',
      comment: 'src/app.ts builds and runs everything; the commands beside it (doctor, uninstall) take what they need from the modules app.ts uses.',
      from: { path: '^src/', pathNot: '^src/(cli|app)\\.ts$' },
      to: { path: '^src/app\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
