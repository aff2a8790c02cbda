// make bench, containers: on one busybox root, `keel run --rm busybox true` against `crun run`
// and `runc run` of the same bundle (Debian's packages); the start-to-exit time of a container
// without the CLI's own startup (runContainer in this process); and the memory of keel's own
// processes per detached container (its monitor: private memory, PSS, RSS). Medians of RUNS; written to out/bench.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../builder/bundle.js';
import { addBusybox } from '../containers/busybox-fixture.js';
import { ImageStore } from '../../containers/store.js';
import { runContainer } from '../../containers/runtime.js';
import { ContainerDb } from '../../containers/db.js';

const RUNS = Number(process.env.KEEL_BENCH_RUNS ?? 15);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const KEEL = join(repoRoot(), 'bin/keel');

function time(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return performance.now() - t0;
}

/** An OCI runtime bundle of the busybox layer running `true`, with runc's default spec. */
function bundle(dir: string, layerDir: string): string {
  const b = join(dir, 'bundle');
  mkdirSync(b, { recursive: true });
  execFileSync('cp', ['-a', layerDir, join(b, 'rootfs')]);
  execFileSync('runc', ['spec', '--bundle', b]);
  const spec = JSON.parse(readFileSync(join(b, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = ['true'];
  spec.root.readonly = false;
  writeFileSync(join(b, 'config.json'), JSON.stringify(spec));
  return b;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-ct-'));
  const root = join(dir, 'root');
  try {
    const store = new ImageStore(root);
    const image = await addBusybox(store, '/bin/busybox', 1700000000);
    const b = bundle(dir, store.layerDirs(image)[0]);
    const keel: number[] = [],
      bridged: number[] = [],
      crun: number[] = [],
      runc: number[] = [],
      inproc: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // As the runtimes' bundle has it: a network namespace of its own with only lo.
      keel.push(time(KEEL, ['run', '--root', root, '--rm', '--network', 'none', 'busybox', 'true']));
      bridged.push(time(KEEL, ['run', '--root', root, '--rm', 'busybox', 'true']));
      crun.push(time('crun', ['--cgroup-manager=disabled', 'run', '--bundle', b, `bench-crun-${i}`]));
      runc.push(time('runc', ['run', '--bundle', b, `bench-runc-${i}`]));
      const m = join(dir, `m${i}`);
      const t0 = performance.now();
      const c = runContainer({
        id: `bench-${process.pid}-${i}`,
        rootfs: {
          lower: store.layerDirs(image).reverse(),
          upper: join(m, 'u'),
          work: join(m, 'w'),
          mountpoint: join(m, 'r'),
        },
        argv: ['true'],
      });
      await c.wait();
      inproc.push(performance.now() - t0);
    }
    const nodeStart = median(Array.from({ length: 5 }, () => time(process.execPath, ['-e', '0'])));
    // Memory of keel's own processes for one detached container: its monitor's RSS.
    const id = execFileSync(KEEL, ['run', '--root', root, '-d', 'busybox', 'sleep', '60'], { encoding: 'utf8' }).trim();
    await new Promise((r) => setTimeout(r, 500));
    const monitor = execFileSync('pgrep', ['-f', `container-monitor --root ${root} ${id}`], { encoding: 'utf8' })
      .trim()
      .split('\n')[0];
    // RSS counts the node binary's pages, shared by every monitor (and the init); what one more
    // container costs is the monitor's private memory (USS), its fair share PSS.
    const smaps = readFileSync(`/proc/${monitor}/smaps_rollup`, 'utf8');
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(smaps)![1]);
    const rssKiB = kib('Rss'),
      pssKiB = kib('Pss'),
      ussKiB = kib('Private_Clean') + kib('Private_Dirty');
    execFileSync(KEEL, ['rm', '-f', '--root', root, id]);
    const db = new ContainerDb(root);
    for (const c of db.list()) db.remove(c.config.id);
    const rows: [string, string][] = [
      [`keel run --rm --network none busybox true (median of ${RUNS})`, `${median(keel).toFixed(1)} ms`],
      ['  the same on the default bridge network (veth, address, NAT)', `${median(bridged).toFixed(1)} ms`],
      ['crun run, same bundle', `${median(crun).toFixed(1)} ms`],
      ['runc run, same bundle', `${median(runc).toFixed(1)} ms`],
      ['container start to exit without the CLI (runContainer)', `${median(inproc).toFixed(1)} ms`],
      ["node -e 0 (the CLI's own startup floor)", `${nodeStart.toFixed(1)} ms`],
      ['keel processes per detached container: monitor private (USS)', `${(ussKiB / 1024).toFixed(1)} MiB`],
      [
        '  its PSS / RSS (RSS counts the shared node binary)',
        `${(pssKiB / 1024).toFixed(1)} / ${(rssKiB / 1024).toFixed(1)} MiB`,
      ],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    process.stdout.write(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
    const out = join(repoRoot(), 'out/bench');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, 'containers-latest.json'),
      JSON.stringify(
        {
          date: new Date().toISOString(),
          keel,
          bridged,
          crun,
          runc,
          inproc,
          nodeStart,
          monitorRssKiB: rssKiB,
          monitorPssKiB: pssKiB,
          monitorUssKiB: ussKiB,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// crun refuses a hybrid cgroup host (v1 plus a v2 "unified" mount, as on this CI machine): run
// everything in a mount namespace of our own where cgroup2 alone is /sys/fs/cgroup.
const hybrid = !readFileSync('/proc/self/mounts', 'utf8')
  .split('\n')
  .some((l) => / \/sys\/fs\/cgroup cgroup2 /.test(l));
if (hybrid && process.env.KEEL_BENCH_NS !== '1') {
  const r = spawnSync(
    'unshare',
    [
      '-m',
      'sh',
      '-c',
      'umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"',
      process.execPath,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, KEEL_BENCH_NS: '1' } },
  );
  process.exitCode = r.status ?? 1;
} else {
  main().catch((e) => {
    process.stderr.write(`bench-containers: ${e.stack ?? e}\n`);
    process.exitCode = 1;
  });
}
