// make bench, updates: the time to apply the built image's payload (download from loopback,
// write with fdatasync, read back and check the verity tree) against a plain copy of the same
// bytes to the same kind of target, and the payload's size. On the host, medians of RUNS.
import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../builder/bundle.js';
import { encodeGrubenv } from '../../slots/grubenv.js';
import { initialGrubenv } from '../../builder/grub.js';
import { applyUpdate, type AgentEnv } from '../../update/agent.js';
import { defaultUpdateConfig } from '../../update/config.js';
import { UpdateServer, updateUserData } from '../e2e/update-fixture.js';
import { Vm } from '../e2e/vm.js';

const RUNS = Number(process.env.KEEL_BENCH_RUNS ?? 3);
const SLOT = 256 * 2 ** 20;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** A machine on disk: an ESP with both grubenv copies and two slot files. */
function machine(dir: string): AgentEnv {
  mkdirSync(join(dir, 'esp/keel'), { recursive: true });
  for (const f of ['grubenv', 'grubenv2'])
    writeFileSync(join(dir, 'esp/keel', f), encodeGrubenv(initialGrubenv({ version: '0.1.0' })));
  for (const s of ['A', 'B']) {
    writeFileSync(join(dir, `usr-${s}`), '');
    truncateSync(join(dir, `usr-${s}`), SLOT);
  }
  return {
    esp: join(dir, 'esp'),
    cmdline: 'keel.slot=A',
    stateDir: join(dir, 'state'),
    publicKey: readFileSync(join(repoRoot(), 'keys/keel-update.pub'), 'utf8'),
    partition: (s) => ({ path: join(dir, `usr-${s}`), size: SLOT }),
    osVersion: '0.1.0',
    log: () => {},
  };
}

/** The same bytes written to the same kind of target, in 1 MiB writes, then fdatasync. */
function plainCopy(from: string, to: string): number {
  const t0 = performance.now();
  const data = readFileSync(from);
  const fd = openSync(to, 'r+');
  try {
    for (let off = 0; off < data.length; off += 1 << 20)
      writeSync(fd, data, off, Math.min(1 << 20, data.length - off), off);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return (performance.now() - t0) / 1000;
}

/** Times apply and a plain fetch-and-write of the same payload inside a booted machine. */
async function inGuest(image: string, server: UpdateServer): Promise<{ apply: number[]; copy: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-guest-'));
  const ud = join(dir, 'user-data');
  writeFileSync(ud, updateUserData(server, { REBOOT_STRATEGY: 'off', CHECK_INTERVAL: 100000 }));
  const vm = Vm.start({ image, userData: ud });
  const secs = async (cmd: string) => {
    const r = await vm.sh(
      `s=$(cut -d" " -f1 /proc/uptime); ${cmd} >/dev/null 2>&1; e=$?; echo $s $(cut -d" " -f1 /proc/uptime) $e`,
      600_000,
    );
    const [a, b, code] = r.out.trim().split(' ').map(Number);
    if (code !== 0) throw new Error(`${cmd} failed in the guest (${code})`);
    return b - a;
  };
  try {
    await vm.ready();
    const apply: number[] = [];
    const copy: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      server.publish(image, `0.2.${i}`);
      apply.push(await secs('keel update apply --no-reboot'));
      copy.push(
        await secs(`wget -q -O - ${server.guestUrl}/stable/usr-0.2.${i}.img | dd of=/dev/vda4 bs=1M conv=fsync`),
      );
    }
    return { apply, copy };
  } finally {
    vm.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const image = join(repoRoot(), 'out/keel.img');
  const dir = mkdtempSync(join(tmpdir(), 'keel-bench-update-'));
  const server = await UpdateServer.start(join(dir, 'srv'));
  try {
    server.publish(image, '0.2.0');
    const payload = join(dir, 'srv/stable/usr-0.2.0.img');
    const apply: number[] = [];
    const copy: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const m = join(dir, `m${i}`);
      const env = machine(m);
      const t0 = performance.now();
      const r = await applyUpdate({ ...defaultUpdateConfig(), server: `http://127.0.0.1:${server.port}` }, env);
      if (r.status !== 'staged') throw new Error(`apply did not stage: ${r.status}`);
      apply.push((performance.now() - t0) / 1000);
      copy.push(plainCopy(payload, join(m, 'usr-A')));
      rmSync(m, { recursive: true, force: true });
    }
    // In the guest (QEMU, TCG here): `keel update apply` against fetching the same bytes with
    // busybox wget straight into the partition (dd, fsync): download and write, no verification.
    const bytes = statSync(payload).size;
    const manifest = statSync(join(dir, 'srv/stable/manifest.json')).size;
    const guest = await inGuest(image, server);
    const rows: [string, string][] = [
      [
        'payload (USR squashfs + verity tree)',
        `${(bytes / 2 ** 20).toFixed(1)} MiB + manifest ${(manifest / 1024).toFixed(1)} KiB`,
      ],
      [`apply: download, write, verify (median of ${RUNS})`, `${median(apply).toFixed(2)} s`],
      [`plain copy of the same bytes (median of ${RUNS})`, `${median(copy).toFixed(2)} s`],
      [`in QEMU: keel update apply (median of ${RUNS})`, `${median(guest.apply).toFixed(2)} s`],
      [`in QEMU: wget | dd to the slot (median of ${RUNS})`, `${median(guest.copy).toFixed(2)} s`],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    process.stdout.write(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
    const out = join(repoRoot(), 'out/bench');
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, 'update-latest.json'),
      JSON.stringify(
        {
          date: new Date().toISOString(),
          payloadBytes: bytes,
          manifestBytes: manifest,
          applySeconds: apply,
          copySeconds: copy,
          guest,
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench-update: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
