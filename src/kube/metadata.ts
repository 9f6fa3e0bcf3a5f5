// Metadata-only reads: a KubeConfig whose requests ask the API server for PartialObjectMetadata, as
// client-go's metadata client does. An informer built on it receives each object's metadata and
// nothing else: no Secret data crosses the wire, whoever made the Secret and however large it is.

import type { KubeConfig, RequestContext } from '@kubernetes/client-node';

const listAccept = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const watchAccept = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/**
 * A KubeConfig (sharing the original's cluster, user and connections) for lists and watches of
 * metadata only. Use it for collections only: a get of one object answers PartialObjectMetadata too.
 */
export function metadataOnly(config: KubeConfig): KubeConfig {
  const derived = Object.create(config) as KubeConfig;
  derived.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    await config.applySecurityAuthentication(context);
    const watching = new URL(context.getUrl()).searchParams.get('watch') === 'true';
    context.setHeaderParam('Accept', watching ? watchAccept : listAccept);
  };
  return derived;
}
