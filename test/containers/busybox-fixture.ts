// Test fixture: the busybox image of containers/busybox-image.ts put straight into a store.
import { BUSYBOX_REF, busyboxImage } from '../../containers/busybox-image.js';
import { MEDIA_TYPES } from '../../containers/media-types.js';
import { sha256, type ImageRecord, type ImageStore } from '../../containers/store.js';

/** Adds the busybox image to a store (a no-op when it is there already). */
export async function addBusybox(store: ImageStore, busyboxPath: string, mtime: number): Promise<ImageRecord> {
  const { layer, config, manifest } = await busyboxImage(busyboxPath, mtime);
  await store.putBlob(layer, sha256(layer));
  await store.putBlob(config, sha256(config));
  await store.putBlob(manifest, sha256(manifest));
  return store.addImage({
    manifest,
    manifestDigest: sha256(manifest),
    config,
    refs: [BUSYBOX_REF],
    layers: [{ digest: sha256(layer), mediaType: MEDIA_TYPES.ociLayerGzip, size: layer.length }],
  });
}
