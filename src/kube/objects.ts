// Names the Kubernetes adapter and the controller both use: how an object is referred to, the JSON
// Patch operations we send, and the field manager every write names. A leaf module: it imports nothing.

/** A Namespace or ServiceAccount, as an Event or a problem refers to it. */
export interface ObjectRef {
  readonly kind: 'Namespace' | 'ServiceAccount';
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
}

/** An RFC 6902 JSON Patch operation. */
export type JsonPatchOp =
  | { readonly op: 'test'; readonly path: string; readonly value: unknown }
  | { readonly op: 'add'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string }
  | { readonly op: 'replace'; readonly path: string; readonly value: unknown };

/** The field manager of every write kube-ecrlogin makes. */
export const fieldManager = 'kube-ecrlogin';
