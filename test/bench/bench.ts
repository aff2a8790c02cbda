// make bench: the figures of the bootable image (sizes, build times, boot times, memory).
// Printed as a table and written as JSON under out/bench/. Never asserted in tests.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage } from '../../builder/build.js';
import { repoRoot } from '../../builder/bundle.js';
import { probeKvm } from '../../builder/qemu.js';
import { Vm } from '../e2e/vm.js';

const BOOTS = Number(process.env.KEEL_BENCH_BOOTS ?? 3);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mib = (b: number) => b / 2 ** 20;

async function bootOnce(image: string, uefi: boolean): Promise<{ ready: number; init: number; usedMiB: number }> {
  const vm = Vm.start({ image, uefi, memoryMiB: 1024 });
  try {
    const m = await vm.waitFor(/keel: ready in ([\d.]+)s \(init ([\d.]+)s\)/);
    const mem = await vm.sh("awk '/^MemTotal:/{t=$2} /^MemAvailable:/{a=$2} END{print t-a}' /proc/meminfo");
    vm.type('poweroff');
    await vm.exited();
    return { ready: Number(m[1]), init: Number(m[2]), usedMiB: Number(mem.out) / 1024 };
  } finally {
    vm.kill();
  }
}

async function main(): Promise<void> {
  const root = repoRoot();
  const definition = join(root, 'image/keel.yaml');
  const cold = mkdtempSync(join(tmpdir(), 'keel-bench-cache-'));
  const out = mkdtempSync(join(tmpdir(), 'keel-bench-out-'));
  process.stderr.write('bench: cold build (empty cache: fetch, extract, compress)\n');
  const c = await buildImage({ definition, outDir: out, cacheDir: cold });
  process.stderr.write('bench: warm build after an init-only change\n');
  const w = await buildImage({ definition, outDir: out, cacheDir: cold, initStamp: `bench ${Date.now()}` });
  rmSync(cold, { recursive: true, force: true });
  const image = join(root, 'out/keel.img');
  const boots: Record<string, { ready: number; init: number; usedMiB: number }[]> = { bios: [], uefi: [] };
  for (const fw of ['bios', 'uefi'] as const) {
    for (let i = 0; i < BOOTS; i++) {
      process.stderr.write(`bench: ${fw} boot ${i + 1}/${BOOTS}\n`);
      boots[fw].push(await bootOnce(image, fw === 'uefi'));
    }
  }
  const img = statSync(image);
  const figures = {
    date: new Date().toISOString(),
    accel: probeKvm() ? 'kvm' : 'tcg',
    usrSquashfsMiB: mib(c.usrBytes),
    imageApparentMiB: mib(img.size),
    imageAllocatedMiB: mib(img.blocks * 512),
    qcow2MiB: mib(statSync(join(root, 'out/keel.qcow2')).size),
    coldBuildSeconds: c.seconds,
    warmBuildSeconds: w.seconds,
    biosReadySeconds: median(boots.bios.map((b) => b.ready)),
    uefiReadySeconds: median(boots.uefi.map((b) => b.ready)),
    initToReadySeconds: median([...boots.bios, ...boots.uefi].map((b) => b.init)),
    memoryUsedMiB: median([...boots.bios, ...boots.uefi].map((b) => b.usedMiB)),
    boots,
  };
  rmSync(out, { recursive: true, force: true });
  const rows: [string, string][] = [
    ['USR squashfs', `${figures.usrSquashfsMiB.toFixed(1)} MiB`],
    [
      'image (apparent / allocated)',
      `${figures.imageApparentMiB.toFixed(0)} / ${figures.imageAllocatedMiB.toFixed(1)} MiB`,
    ],
    ['qcow2', `${figures.qcow2MiB.toFixed(1)} MiB`],
    ['cold build', `${figures.coldBuildSeconds.toFixed(1)} s`],
    ['warm build (init changed)', `${figures.warmBuildSeconds.toFixed(1)} s`],
    [`kernel to ready, BIOS (median of ${BOOTS}, ${figures.accel})`, `${figures.biosReadySeconds.toFixed(2)} s`],
    [`kernel to ready, UEFI (median of ${BOOTS}, ${figures.accel})`, `${figures.uefiReadySeconds.toFixed(2)} s`],
    ['init start to ready (median)', `${figures.initToReadySeconds.toFixed(2)} s`],
    ['memory in use after boot (median)', `${figures.memoryUsedMiB.toFixed(1)} MiB`],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
  const dir = join(root, 'out/bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${figures.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(figures, null, 2) + '\n');
  writeFileSync(join(dir, 'latest.json'), readFileSync(file));
  process.stdout.write(`written ${file}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
