// make bench, the service manager's figures: boot to a target of 100 trivial services, PID 1's
// memory with them loaded, restart latency, and PID 1's wakeups per second when idle.
// Measured on the host with the init as PID 1 of its own namespaces (the host's Node).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainedInit, testTarget } from '../init/contained-init.js';
import { repoRoot } from '../../builder/bundle.js';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function ctxSwitches(pid: number): number {
  const s = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return (
    Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(s)![1]) + Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(s)![1])
  );
}

async function main(): Promise<void> {
  const units: Record<string, string> = {};
  const names = Array.from({ length: 100 }, (_, i) => `t${i}.service`);
  for (const n of names) units[n] = '[Service]\nExecStart=/bin/sleep infinity\n';
  units['test.target'] = testTarget(...names);
  units['r.service'] = '[Service]\nExecStart=/bin/sleep infinity\n';
  const bootMs: number[] = [];
  let rssKiB = 0;
  let wakeups = 0;
  const restartMs: number[] = [];
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now();
    const init = await ContainedInit.start(units, { timeoutMs: 60_000 });
    bootMs.push(performance.now() - t0);
    if (run === 0) {
      // The init's host pid: the only node process whose parent is the unshare we started.
      const pids = readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8')
        .trim()
        .split(/\s+/)
        .map(Number);
      const unshare = pids.find((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'unshare')!;
      const pid1 = Number(readFileSync(`/proc/${unshare}/task/${unshare}/children`, 'utf8').trim().split(/\s+/)[0]);
      // Let the boot's tail settle (journal writes, cgroup events) before counting idle wakeups.
      await new Promise((r) => setTimeout(r, 5000));
      rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid1}/status`, 'utf8'))![1]);
      const c0 = ctxSwitches(pid1);
      await new Promise((r) => setTimeout(r, 10_000));
      wakeups = (ctxSwitches(pid1) - c0) / 10;
      await init.ctl('job', { unit: 'r.service', job: 'start' });
      for (let i = 0; i < 20; i++) {
        const s = performance.now();
        await init.ctl('job', { unit: 'r.service', job: 'restart' });
        restartMs.push(performance.now() - s);
      }
    }
    await init.stop();
  }
  const figures = {
    date: new Date().toISOString(),
    node: process.version,
    bootTo100ServicesMs: median(bootMs),
    pid1RssMiBWith100Units: rssKiB / 1024,
    restartLatencyMs: median(restartMs),
    idleWakeupsPerSecond: wakeups,
  };
  const rows: [string, string][] = [
    ['init start to target with 100 services (median of 3)', `${figures.bootTo100ServicesMs.toFixed(0)} ms`],
    ['PID 1 RSS with 100 units loaded', `${figures.pid1RssMiBWith100Units.toFixed(1)} MiB`],
    ['restart latency (median of 20)', `${figures.restartLatencyMs.toFixed(1)} ms`],
    ['PID 1 wakeups per second, idle (10 s)', `${figures.idleWakeupsPerSecond.toFixed(1)}`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  process.stdout.write(rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n');
  const dir = join(repoRoot(), 'out/bench');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'init-latest.json'), JSON.stringify(figures, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`bench-init: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
