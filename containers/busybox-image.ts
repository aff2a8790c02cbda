// A busybox image made from Debian's static busybox: one layer (the binary, a link per applet,
// a minimal /etc), an OCI config and manifest. The image build bakes it into Keel so that
// `keel run busybox ...` works offline on first boot; tests use it on the host the same way.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { MEDIA_TYPES } from './media-types.js';
import { writeTar, type TarWriteEntry } from './tar.js';
import { sha256 } from './store.js';

/** The ref the image is known by. */
export const BUSYBOX_REF = 'docker.io/library/busybox:latest';

async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** The layer's entries: every applet is a symlink to /bin/busybox. */
export function busyboxEntries(binary: Buffer, applets: string[], mtime: number): TarWriteEntry[] {
  const h = (
    name: string,
    type: TarWriteEntry['header']['type'],
    mode: number,
    extra: Partial<TarWriteEntry['header']> = {},
  ) => ({ name, type, mode, uid: 0, gid: 0, mtime, ...extra });
  const dirs = ['bin', 'etc', 'root', 'tmp', 'var', 'home', 'usr', 'usr/bin', 'usr/sbin', 'sbin'];
  return [
    ...dirs.map((d) => ({ header: h(d, 'dir', d === 'tmp' ? 0o1777 : d === 'root' ? 0o700 : 0o755) })),
    { header: h('bin/busybox', 'file', 0o755, { size: binary.length }), data: binary },
    ...applets
      .filter((a) => a !== 'busybox')
      .map((a) => ({ header: h(`bin/${a}`, 'symlink', 0o777, { linkname: 'busybox' }) })),
    { header: h('etc/passwd', 'file', 0o644, { size: PASSWD.length }), data: PASSWD },
    { header: h('etc/group', 'file', 0o644, { size: GROUP.length }), data: GROUP },
  ];
}

const PASSWD = Buffer.from(
  'root:x:0:0:root:/root:/bin/sh\n' +
    'daemon:x:1:1:daemon:/usr/sbin:/bin/false\n' +
    'nobody:x:65534:65534:nobody:/home:/bin/false\n',
);
const GROUP = Buffer.from('root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n');

/** The image's blobs: a gzip layer, the config and the manifest (deterministic for a binary and time). */
export async function busyboxImage(
  busyboxPath: string,
  mtime: number,
): Promise<{ layer: Buffer; config: Buffer; manifest: Buffer }> {
  const binary = readFileSync(busyboxPath);
  const applets = execFileSync(busyboxPath, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
  const tar = await collect(writeTar(busyboxEntries(binary, applets, mtime)));
  const layer = gzipSync(tar, { level: 9 });
  const created = new Date(mtime * 1000).toISOString();
  const config = Buffer.from(
    JSON.stringify({
      created,
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
      history: [{ created, created_by: `keel: Debian busybox-static (${applets.length} applets)` }],
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256(config), size: config.length },
      layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: sha256(layer), size: layer.length }],
    }),
  );
  return { layer, config, manifest };
}

/** The image as an OCI archive (oci-layout, index.json naming it busybox:latest, blobs): what the
 *  image build bakes into /usr/share/keel/images for `keel run busybox` offline. */
export async function busyboxArchive(busyboxPath: string, mtime: number): Promise<Buffer> {
  const { layer, config, manifest } = await busyboxImage(busyboxPath, mtime);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: sha256(manifest),
          size: manifest.length,
          annotations: { 'io.containerd.image.name': BUSYBOX_REF, 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    }),
  );
  const layout = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
  const file = (name: string, data: Buffer): TarWriteEntry => ({
    header: { name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: data.length },
    data,
  });
  const dir = (name: string): TarWriteEntry => ({ header: { name, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime } });
  return collect(
    writeTar([
      file('oci-layout', layout),
      file('index.json', index),
      dir('blobs'),
      dir('blobs/sha256'),
      ...[layer, config, manifest].map((b) => file(`blobs/sha256/${sha256(b).slice(7)}`, b)),
    ]),
  );
}

/** Where the image build puts archives of images every Keel has. */
export const BAKED_IMAGES = '/usr/share/keel/images';
