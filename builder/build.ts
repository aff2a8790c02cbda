// `keel build`: image definition in, out/keel.img + out/keel.qcow2 + manifest out. No root needed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildBaseTree } from './base-tree.js';
import { bundleCli, bundleInit, nativeAddon } from './bundle.js';
import { cacheRoot, cachedDir, keyOf, sha256File } from './cache.js';
import { assembleDisk, keelPartitions } from './disk.js';
import { makeEsp, scratchFile } from './esp.js';
import { fetchDeb, fetchNode, type FetchedPackage } from './fetch.js';
import { applyFsPlan, type FsOp } from './fs-plan.js';
import { encodeGrubenv } from '../slots/grubenv.js';
import { grubConfig, initialGrubenv, makeGrubImages } from './grub.js';
import { deterministicGuid } from './guid.js';
import { run, which } from './host-tools.js';
import { loadImageDef, type ImageDef } from './image-def.js';
import { buildInitramfs, VERITY_HELPER_SOURCE } from './initramfs.js';
import { appendVerity, veritySaltFor, verityUuidFor } from '../slots/verity.js';
import { busyboxArchive } from '../containers/busybox-image.js';
import { earlyBootPlan, renderInitScript } from './initramfs-plan.js';
import { silentProgress, type Progress } from './progress.js';
import { rootPlan } from './root-plan.js';
import { enableInTree } from './enable-units.js';
import { missingLibraries } from './check-libs.js';
import { checkUserDataFile } from '../cloud-config/check-file.js';
import { BuildError } from './errors.js';
import { makeExt4, makeSquashfs } from './squashfs.js';

/** Options of one build. */
export interface BuildOptions {
  definition: string;
  outDir: string;
  cacheDir?: string;
  epoch?: number;
  seed?: string;
  useCache?: boolean;
  progress?: Progress;
  /** Extra text in the init bundle's banner: `make bench` uses it to time an init-only change. */
  initStamp?: string;
}

/** What a build made. */
export interface BuildResult {
  image: string;
  qcow2: string;
  manifest: string;
  usrBytes: number;
  seconds: number;
}

const BASE_FORMAT = '2';
const HOST_TOOLS = [
  'gcc',
  'apt-get',
  'apt-cache',
  'dpkg-deb',
  'npm',
  'mksquashfs',
  'mkfs.vfat',
  'mcopy',
  'mmd',
  'mkfs.ext4',
  'grub-mkimage',
  'qemu-img',
  'depmod',
  'strip',
];

/** SOURCE_DATE_EPOCH, else the last commit's time, else a fixed date: builds are reproducible by default. */
export function defaultEpoch(env: NodeJS.ProcessEnv = process.env): number {
  if (env.SOURCE_DATE_EPOCH && /^\d+$/.test(env.SOURCE_DATE_EPOCH)) return Number(env.SOURCE_DATE_EPOCH);
  try {
    return (
      Number(
        execFileSync('git', ['log', '-1', '--format=%ct'], { stdio: ['ignore', 'pipe', 'ignore'] })
          .toString()
          .trim(),
      ) || 1700000000
    );
  } catch {
    return 1700000000;
  }
}

/** Builds the image described by `opts.definition`. */
export async function buildImage(opts: BuildOptions): Promise<BuildResult> {
  const t0 = performance.now();
  const p = opts.progress ?? silentProgress;
  const def: ImageDef = loadImageDef(opts.definition);
  for (const t of HOST_TOOLS) which(t);
  const epoch = opts.epoch ?? defaultEpoch();
  const seed = opts.seed ?? `${def.name}-${def.version}`;
  const cache = opts.cacheDir ?? cacheRoot();
  const useCache = opts.useCache !== false;
  const outDir = resolve(opts.outDir);
  const work = join(outDir, '.work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });

  const { debs, kernel, node } = await p.step(
    `fetch ${def.packages.length + 1} Debian packages and Node ${def.node.version}`,
    async () => {
      const debs: FetchedPackage[] = [];
      for (const pkg of def.packages) debs.push(await fetchDeb(cache, pkg.name, pkg.version));
      return {
        debs,
        kernel: await fetchDeb(cache, def.kernel.package, def.kernel.version),
        node: await fetchNode(cache, def.node.version),
      };
    },
  );
  const baseKey = keyOf(
    BASE_FORMAT,
    ...[...debs, kernel, node].map((f) => f.sha256),
    JSON.stringify([def.exclude, def.kernel]),
  );
  const base = await p.step('lay out the base tree (packages, kernel, Node)', () =>
    cachedDir(cache, 'base', baseKey, (dir) => buildBaseTree(dir, def, debs, kernel, node), { enabled: useCache }),
  );

  const initJs = join(work, 'init.mjs');
  const cliJs = join(work, 'keel.mjs');
  await p.step('bundle the init and the keel command', async () => {
    await bundleInit(initJs, def.node.version, opts.initStamp);
    await bundleCli(cliJs, def.node.version);
  });
  const native = nativeAddon();
  const initScript = renderInitScript(earlyBootPlan({ modules: def.kernel.initramfsModules, init: [] }));
  const initrdKey = keyOf(
    baseKey,
    initScript,
    JSON.stringify(def.kernel.initramfsModules),
    String(epoch),
    readFileSync(VERITY_HELPER_SOURCE),
  );
  const initrd = await p.step('make the initramfs', () =>
    cachedDir(
      cache,
      'initrd',
      initrdKey,
      async (dir) => {
        const r = await buildInitramfs(base.dir, def.kernel.release, def.kernel.initramfsModules, epoch, work);
        writeFileSync(join(dir, 'initrd'), r.data);
      },
      { enabled: useCache },
    ),
  );

  const updateKey = def.update.publicKey;
  if (!existsSync(updateKey)) {
    throw new BuildError(
      'ENOKEY',
      `cannot bake the update key into USR: ${updateKey} does not exist; make the ` +
        `pair with \`keel keys generate\` (make image does it once)`,
      { path: updateKey },
    );
  }
  // The busybox container image, from the image's own static busybox: `keel run busybox` offline.
  const busybox = join(work, 'busybox.oci.tar');
  writeFileSync(busybox, await busyboxArchive(join(base.dir, 'usr/bin/busybox'), epoch));
  const plan: FsOp[] = [
    ...rootPlan(def, epoch, { init: initJs, cli: cliJs, native, initrd: join(initrd.dir, 'initrd'), updateKey }),
    { op: 'mkdir', path: 'usr/share/keel/images' },
    { op: 'copy', path: 'usr/share/keel/images/busybox.oci.tar', from: busybox, mode: 0o644 },
  ];
  const filesDir = def.filesDir;
  const usrKey = keyOf(
    baseKey,
    initrdKey,
    readFileSync(updateKey),
    readFileSync(busybox),
    readFileSync(initJs),
    readFileSync(cliJs),
    readFileSync(native),
    JSON.stringify(plan),
    String(epoch),
    filesDir
      ? await run('tar', ['-C', filesDir, '--sort=name', '-cf', '-', '.'], { encoding: 'buffer' } as Parameters<
          typeof run
        >[2]).then(String)
      : '',
  );
  const usr = await p.step('make USR (xz squashfs and its dm-verity tree)', () =>
    cachedDir(
      cache,
      'usr',
      usrKey,
      async (dir) => {
        const tree = join(work, 'root');
        await run('cp', ['-al', base.dir, tree]);
        applyFsPlan(tree, plan);
        if (filesDir) await run('cp', ['-a', '--remove-destination', `${filesDir}/.`, tree]);
        enableInTree(tree, def.units.enable);
        const missing = missingLibraries(tree);
        if (missing.length) {
          throw new BuildError(
            'ELIBS',
            'cannot seal USR: shared libraries are missing (add the Debian packages that ship them ' +
              'to the image definition):\n  ' +
              `${missing
                .slice(0, 20)
                .map((m) => `${m.file} needs ${m.lib}`)
                .join('\n  ')}`,
          );
        }
        await makeSquashfs(tree, join(dir, 'usr.squashfs'), { epoch, maxBytes: def.partitions.usr });
        rmSync(tree, { recursive: true, force: true });
        const v = appendVerity(join(dir, 'usr.squashfs'), {
          salt: veritySaltFor(`${seed}/usr`),
          uuid: verityUuidFor(`${seed}/usr`),
        });
        writeFileSync(
          join(dir, 'verity.json'),
          JSON.stringify({
            rootHash: v.rootHash,
            hashOffset: v.hashOffset,
            salt: v.salt.toString('hex'),
            dataBlocks: v.dataBlocks,
          }) + '\n',
        );
      },
      { enabled: useCache },
    ),
  );
  const usrImage = join(usr.dir, 'usr.squashfs');
  const verity: { rootHash: string; hashOffset: number; salt: string; dataBlocks: number } = JSON.parse(
    readFileSync(join(usr.dir, 'verity.json'), 'utf8'),
  );
  if (statSync(usrImage).size > def.partitions.usr) {
    throw new BuildError(
      'ESIZE',
      'cannot fit USR in its partition: squashfs and verity tree are ' +
        `${statSync(usrImage).size} bytes, the partition ${def.partitions.usr}`,
    );
  }

  const esp = join(work, 'esp.img');
  const grub = await p.step('make GRUB (UEFI and BIOS) and the ESP', async () => {
    const g = await makeGrubImages(work);
    await makeEsp(
      esp,
      def.partitions.esp,
      {
        'EFI/BOOT/BOOTX64.EFI': g.efi,
        'keel/grub.cfg': scratchFile(work, 'grub.cfg', grubConfig(def.kernel.cmdline, { aHash: verity.rootHash })),
        // Two copies of the slot state: GRUB reads the first good one; the OS writes the second first.
        'keel/grubenv': scratchFile(
          work,
          'grubenv',
          encodeGrubenv(initialGrubenv({ hash: verity.rootHash, version: def.version })),
        ),
        'keel/grubenv2': scratchFile(
          work,
          'grubenv2',
          encodeGrubenv(initialGrubenv({ hash: verity.rootHash, version: def.version })),
        ),
      },
      { epoch, volumeId: deterministicGuid(seed, 'esp').slice(0, 8) },
    );
    return g;
  });
  const oem = join(work, 'oem.img');
  await p.step('make OEM (ext4)', async () => {
    const dir = join(work, 'oem');
    mkdirSync(dir);
    if (def.oem) {
      writeFileSync(join(dir, 'oem-release'), `ID=${def.oem.id}\n`);
      writeFileSync(
        join(dir, 'grub.cfg'),
        `# OEM ${def.oem.id}: read by keel/grub.cfg before booting a slot.\n` +
          `set keel_oem_cmdline="${def.oem.kernelArgs}"\n`,
      );
      if (def.oem.cloudConfig) {
        // The vendor's cloud-config, applied first at every boot: it must be valid to be baked in.
        const check = checkUserDataFile(def.oem.cloudConfig);
        for (const l of check.lines) p.note(l);
        if (!check.ok)
          throw new BuildError(
            'EUSERDATA',
            `cannot bake ${def.oem.cloudConfig} into OEM: it has errors:\n  ${check.lines.join('\n  ')}`,
            { path: def.oem.cloudConfig },
          );
        writeFileSync(join(dir, 'cloud-config.yml'), readFileSync(def.oem.cloudConfig));
        utimesSync(join(dir, 'cloud-config.yml'), epoch, epoch);
      }
      for (const f of ['oem-release', 'grub.cfg']) utimesSync(join(dir, f), epoch, epoch);
      utimesSync(dir, epoch, epoch);
    }
    await makeExt4(oem, def.partitions.oem, {
      label: 'OEM',
      uuid: deterministicGuid(seed, 'oem').toLowerCase(),
      epoch,
      dir,
    });
  });

  mkdirSync(outDir, { recursive: true });
  const image = join(outDir, 'keel.img');
  const qcow2 = join(outDir, 'keel.qcow2');
  const parts = keelPartitions(def.partitions, seed).map((part) => ({
    ...part,
    image: { 'EFI-SYSTEM': esp, 'USR-A': usrImage, OEM: oem }[part.name],
  }));
  await p.step('assemble the GPT disk', async () => {
    assembleDisk(`${image}.tmp`, parts, {
      seed,
      bootImg: readFileSync(grub.bootImg),
      coreImg: readFileSync(grub.core),
    });
    renameSync(`${image}.tmp`, image);
  });
  await p.step('convert to qcow2', async () => {
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', image, `${qcow2}.tmp`]);
    renameSync(`${qcow2}.tmp`, qcow2);
  });
  const usrBytes = readFileSync(usrImage).length;
  const manifest = join(outDir, 'keel.manifest.json');
  writeFileSync(
    manifest,
    JSON.stringify(
      {
        name: def.name,
        version: def.version,
        sourceDateEpoch: epoch,
        seed,
        kernel: { release: def.kernel.release, cmdline: def.kernel.cmdline },
        usr: { bytes: usrBytes, sha256: await sha256File(usrImage), verity },
        packages: [...debs, kernel, node].map(({ name, version, sha256, source }) => ({
          name,
          version,
          sha256,
          source,
        })),
      },
      null,
      2,
    ) + '\n',
  );
  rmSync(work, { recursive: true, force: true });
  return { image, qcow2, manifest, usrBytes, seconds: (performance.now() - t0) / 1000 };
}
