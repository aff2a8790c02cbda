// The pure side of a pull: manifest media types, descriptors, platform choice and layer types,
// without a registry.
import assert from 'node:assert/strict';
import { PullFailure } from '../../containers/errors.js';
import {
  manifestMediaType,
  parseImageManifest,
  parseIndex,
  selectPlatform,
  type Descriptor,
} from '../../containers/manifest.js';
import { MEDIA_TYPES, ociLayerType } from '../../containers/media-types.js';

const D = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const fails = (code: string, message: RegExp) => (e: unknown) =>
  e instanceof PullFailure && e.code === code && message.test(e.message);

describe('containers/manifest', () => {
  it(
    'takes the media type from the field, then Content-Type, then the ' + 'shape; refuses schema 1 and unknown types',
    () => {
      assert.equal(
        manifestMediaType({ mediaType: MEDIA_TYPES.dockerManifest }, 'application/json', 'm'),
        MEDIA_TYPES.dockerManifest,
      );
      assert.equal(manifestMediaType({}, `${MEDIA_TYPES.ociIndex}; charset=utf-8`, 'm'), MEDIA_TYPES.ociIndex);
      assert.equal(manifestMediaType({ manifests: [] }, 'application/json', 'm'), MEDIA_TYPES.ociIndex);
      assert.equal(manifestMediaType({ config: {}, layers: [] }, undefined, 'm'), MEDIA_TYPES.ociManifest);
      assert.throws(
        () => manifestMediaType({ schemaVersion: 1 }, undefined, 'manifest x'),
        fails('EUNSUPPORTED', /^manifest x is a Docker schema 1 manifest/),
      );
      assert.throws(
        () => manifestMediaType({ mediaType: 'text/plain' }, undefined, 'm'),
        fails('EUNSUPPORTED', /unsupported media type text\/plain/),
      );
    },
  );

  it('checks descriptors: sha256 digests only (they become file names), sizes, and a container config', () => {
    const config = { mediaType: MEDIA_TYPES.ociConfig, digest: D(1), size: 10 };
    const layer = { mediaType: MEDIA_TYPES.ociLayerGzip, digest: D(2), size: 20 };
    assert.deepEqual(parseImageManifest({ schemaVersion: 2, config, layers: [layer] }), { config, layers: [layer] });
    assert.throws(
      () => parseImageManifest({ schemaVersion: 2, config, layers: [{ ...layer, digest: 'sha256:../../etc' }] }),
      fails('EUNSUPPORTED', /layers\[0\] has the digest "sha256:\.\.\/\.\.\/etc"; only sha256 is supported/),
    );
    assert.throws(
      () => parseImageManifest({ schemaVersion: 2, config, layers: [{ ...layer, size: -1 }] }),
      fails('EMANIFEST', /layers\[0\] has no valid size/),
    );
    assert.throws(
      () =>
        parseImageManifest({
          schemaVersion: 2,
          config: { ...config, mediaType: 'application/vnd.cncf.helm.config.v1+json' },
          layers: [],
        }),
      fails('EUNSUPPORTED', /not a container image/),
    );
    assert.throws(() => parseIndex({}), fails('EMANIFEST', /no "manifests" list/));
  });

  it("chooses a platform; an entry without a variant is the architecture's default one", () => {
    const entries: Descriptor[] = [
      { mediaType: MEDIA_TYPES.ociManifest, digest: D(3), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MEDIA_TYPES.ociManifest, digest: D(4), size: 1, platform: { os: 'linux', architecture: 'arm64' } },
      {
        mediaType: MEDIA_TYPES.ociManifest,
        digest: D(5),
        size: 1,
        platform: { os: 'unknown', architecture: 'unknown' },
      },
    ];
    assert.equal(selectPlatform(entries, { os: 'linux', architecture: 'arm64', variant: 'v8' }).digest, D(4));
    assert.throws(
      () => selectPlatform(entries, { os: 'linux', architecture: 'arm', variant: 'v6' }),
      fails('EPLATFORM', /^no image for linux\/arm\/v6 in the index; it has linux\/amd64, linux\/arm64$/),
    );
  });

  it('maps Docker layer types to their OCI names, and leaves the others', () => {
    assert.equal(ociLayerType(MEDIA_TYPES.dockerLayerGzip), MEDIA_TYPES.ociLayerGzip);
    assert.equal(ociLayerType(MEDIA_TYPES.dockerForeignLayerGzip), MEDIA_TYPES.ociNondistributableLayerGzip);
    assert.equal(ociLayerType(MEDIA_TYPES.ociLayerZstd), MEDIA_TYPES.ociLayerZstd);
  });
});
