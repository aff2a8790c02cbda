// keel update status|check|apply|rollback|agent: show and drive A/B updates on a running Keel.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Verb } from './main.js';
import { request } from './control-client.js';
import {
  applyUpdate,
  checkForUpdate,
  readStatus,
  requireBooted,
  rollback,
  stagedSlot,
  type AgentEnv,
} from '../update/agent.js';
import { loadUpdateConf } from '../update/config.js';
import { mayReboot, runAgent } from '../update/daemon.js';
import { bootedSlot, describeSlots, ESP_DIR, readSlotState } from '../slots/store.js';
import { findPartition } from '../init/esp.js';
import { RebootLock } from '../update/etcd-lock.js';

const readText = (p: string) => {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
};
const STATE_DIR = '/var/lib/keel/update';
/** The agent's first check after boot (or CHECK_INTERVAL, when that is shorter), as Flatcar waits. */
const FIRST_CHECK_SECONDS = 300;

/** The agent's environment on a running Keel. */
export function realAgentEnv(log: (m: string) => void): AgentEnv {
  return {
    esp: ESP_DIR,
    cmdline: readText('/proc/cmdline'),
    stateDir: STATE_DIR,
    publicKey: readText('/usr/lib/keel/update.pub'),
    partition(slot) {
      const dev = findPartition(`USR-${slot}`);
      if (!dev) return null;
      const sectors = Number(readText(`/sys/class/block/${dev.replace(/^\/dev\//, '')}/size`).trim());
      return { path: dev, size: sectors * 512 };
    },
    osVersion: /^VERSION_ID="?([^"\n]*)"?$/m.exec(readText('/usr/lib/os-release'))?.[1] ?? '0',
    log,
  };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/** Progress for people: one rewritten line on a terminal, a line per 10% otherwise. */
function progressPrinter(): (p: {
  doneBytes: number;
  totalBytes: number;
  resumedBytes: number;
  bytesPerSecond: number;
}) => void {
  let lastTenth = -1;
  return (p) => {
    const pct = p.totalBytes ? Math.floor((p.doneBytes / p.totalBytes) * 100) : 100;
    const line =
      `downloading: ${mib(p.doneBytes)} of ${mib(p.totalBytes)} (${pct}%), ` +
      `${mib(p.bytesPerSecond)}/s${p.resumedBytes ? `, ${mib(p.resumedBytes)} resumed` : ''}`;
    if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K`);
    else if (Math.floor(pct / 10) !== lastTenth) {
      lastTenth = Math.floor(pct / 10);
      process.stdout.write(`${line}\n`);
    }
  };
}

async function status(env: AgentEnv): Promise<number> {
  const booted = bootedSlot(env.cmdline);
  const { state, copy } = readSlotState(env.esp);
  const out = [
    `Booted: slot ${booted ?? '?'}` +
      `${booted && state[booted].version ? `, version ${state[booted].version}` : ''}` +
      `${booted && !state[booted].ok ? ' (on trial: not yet committed)' : ''}`,
  ];
  out.push(...describeSlots(state, booted).map((l) => `  ${l}`));
  if (!copy) out.push('  (no readable slot state on the ESP: GRUB uses its defaults)');
  const st = readStatus(env.stateDir);
  if (st) {
    const p = st.progress ? `: ${mib(st.progress.doneBytes)} of ${mib(st.progress.totalBytes)}` : '';
    out.push(
      `Agent: ${st.phase}${st.version ? ` ${st.version}` : ''}` +
        `${st.slot ? ` (slot ${st.slot})` : ''}${p} at ` +
        `${st.at}${st.error ? `\n  ${st.error}` : ''}`,
    );
    if (st.lastCheck) out.push(`Last check: ${st.lastCheck}`);
  }
  const rb = readText(join(env.stateDir, 'rollback.json'));
  if (rb) {
    try {
      const r = JSON.parse(rb);
      out.push(
        `Rollback: at ${r.at}, slot ${r.failed}` +
          `${r.failedVersion ? ` (version ${r.failedVersion})` : ''} did not boot; running slot ` +
          `${r.running}${r.runningVersion ? ` (version ${r.runningVersion})` : ''}` +
          `${r.reason ? `\n  ${r.reason}` : ''}`,
      );
    } catch {
      /* a torn record says nothing */
    }
  }
  if (booted && stagedSlot(state, booted)) out.push(`Pending: slot ${state.order[0]} boots next (reboot to use it)`);
  try {
    const c = loadUpdateConf();
    out.push(
      `Server: ${c.server ?? '(none)'} group ${c.group}, reboot strategy ` +
        `${c.strategy}${c.window ? `, window ${c.window.start} +${c.window.length}` : ''}`,
    );
  } catch (e) {
    out.push(`Config: ${(e as Error).message}`);
  }
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

async function rebootPerStrategy(env: AgentEnv, noReboot: boolean): Promise<void> {
  if (noReboot) {
    process.stdout.write('reboot to use it\n');
    return;
  }
  const cfg = loadUpdateConf();
  const id = readText('/etc/machine-id').trim() || 'unknown';
  const may = await mayReboot(
    cfg,
    new Date(),
    () =>
      new RebootLock({
        endpoints: cfg.etcd.endpoints,
        group: cfg.etcd.group,
        id,
        username: cfg.etcd.username,
        password: cfg.etcd.password,
      }),
  );
  if (!may.ok) {
    process.stdout.write(`not rebooting now: ${may.why}\n`);
    return;
  }
  process.stdout.write(`rebooting (REBOOT_STRATEGY=${cfg.strategy})\n`);
  await request('shutdown', { kind: 'reboot' });
}

export const verb: Verb = {
  summary: 'Show and drive A/B updates: status, check, apply, rollback (agent: the keel-update.service loop).',
  usage: 'keel update status | check | apply [--force] [--no-reboot] | rollback [--no-reboot] | agent',
  options: { force: { type: 'boolean', default: false }, 'no-reboot': { type: 'boolean', default: false } },
  async run(v, [sub = 'status']) {
    const env = realAgentEnv((m) => process.stderr.write(`keel update: ${m}\n`));
    switch (sub) {
      case 'status':
        return status(env);
      case 'check': {
        const c = await checkForUpdate(loadUpdateConf(), env);
        process.stdout.write(
          c.newer
            ? `update available: ${c.manifest.version} (running ${c.current}), ${mib(c.manifest.size)}\n`
            : `up to date: running ${c.current}, the server offers ${c.manifest.version}\n`,
        );
        return 0;
      }
      case 'apply': {
        const r = await applyUpdate(loadUpdateConf(), env, { force: Boolean(v.force), progress: progressPrinter() });
        if (process.stdout.isTTY) process.stdout.write('\n');
        if (r.status === 'up-to-date') {
          process.stdout.write(`up to date: running ${r.current}\n`);
          return 0;
        }
        process.stdout.write(
          r.status === 'staged'
            ? `update ${r.version} written to slot ${r.slot} and verified in ${r.seconds.toFixed(1)}s; it boots next\n`
            : `update ${r.version} is already staged in slot ${r.slot}\n`,
        );
        await rebootPerStrategy(env, Boolean(v['no-reboot']));
        return 0;
      }
      case 'rollback': {
        const r = rollback(env);
        process.stdout.write(`slot ${r.to}${r.version ? ` (version ${r.version})` : ''} boots next\n`);
        if (!v['no-reboot']) await request('shutdown', { kind: 'reboot' });
        return 0;
      }
      case 'agent': {
        requireBooted(env);
        const env2 = realAgentEnv((m) => process.stdout.write(`${m}\n`));
        const cfg = loadUpdateConf();
        await runAgent(
          env2,
          {
            loadConfig: () => loadUpdateConf(),
            reboot: async () => {
              await request('shutdown', { kind: 'reboot' });
            },
            machineId: readText('/etc/machine-id').trim() || 'unknown',
          },
          Math.min(cfg.checkIntervalSeconds, FIRST_CHECK_SECONDS) * 1000,
        );
        return 0; // not reached: the agent runs until it is stopped
      }
      default:
        throw new TypeError(
          `keel update: unknown subcommand ${JSON.stringify(sub)} (use: status, check, apply, rollback, agent)`,
        );
    }
  },
};
