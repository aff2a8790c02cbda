// The OCI and Docker media types Keel reads and writes, in one place for the registry client,
// image archives and the images Keel builds itself.

/** Media types by short name. */
export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociNondistributableLayerGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/** Indexes: an OCI image index or a Docker manifest list. */
export const INDEX_TYPES: readonly string[] = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList];
/** Single-platform image manifests. */
export const IMAGE_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
/** Docker schema 1 manifests, which Keel refuses. */
export const SCHEMA1_TYPES: readonly string[] = [MEDIA_TYPES.dockerSchema1, MEDIA_TYPES.dockerSchema1Signed];
/** Image configs. */
export const CONFIG_TYPES: readonly string[] = [MEDIA_TYPES.ociConfig, MEDIA_TYPES.dockerConfig];
/** The Accept header of a manifest request: every manifest type Keel reads. */
export const MANIFEST_ACCEPT = [...INDEX_TYPES, ...IMAGE_TYPES].join(', ');

/** The OCI layer type of a Docker one (the same bytes); other types are returned as they are. */
export function ociLayerType(t: string): string {
  if (t === MEDIA_TYPES.dockerLayerGzip) return MEDIA_TYPES.ociLayerGzip;
  if (t === MEDIA_TYPES.dockerForeignLayerGzip) return MEDIA_TYPES.ociNondistributableLayerGzip;
  return t;
}
