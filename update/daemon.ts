// `keel update agent`, the unit keel-update.service runs: check on an interval, apply what is
// newer, and reboot into it as the reboot strategy says (at once, in the locksmith window, after
// taking the etcd lock, or never by itself).
import { applyUpdate, requireBooted, stagedSlot, type AgentEnv } from './agent.js';
import type { UpdateConfig } from './config.js';
import { RebootLock } from './etcd-lock.js';
import { inWindow, msUntilWindow, parseWindow } from './reboot-window.js';
import { readSlotState } from '../slots/store.js';

/** What the loop needs besides the agent's environment. */
export interface DaemonDeps {
  loadConfig(): UpdateConfig;
  reboot(): Promise<void>;
  machineId: string;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

const sleepFor = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Whether the machine may reboot now; if not, how long to wait before asking again, and why. */
export async function mayReboot(
  cfg: UpdateConfig,
  now: Date,
  lock: () => RebootLock,
): Promise<{ ok: true } | { ok: false; waitMs: number; why: string }> {
  if (cfg.strategy === 'off') return { ok: false, waitMs: Infinity, why: 'REBOOT_STRATEGY=off: reboot to use it' };
  if (cfg.window) {
    const w = parseWindow(cfg.window.start, cfg.window.length);
    if (!inWindow(w, now)) {
      const ms = msUntilWindow(w, now);
      return {
        ok: false,
        waitMs: ms,
        why:
          `waiting for the reboot window ${cfg.window.start} ` +
          `(+${cfg.window.length}), opening in ${Math.round(ms / 60000)} min`,
      };
    }
  }
  if (cfg.strategy === 'reboot') return { ok: true };
  try {
    if (await lock().lock()) return { ok: true };
    return { ok: false, waitMs: 60_000, why: 'waiting for the etcd reboot lock (held by other machines)' };
  } catch (e) {
    // best-effort: without a reachable etcd, behave like `reboot`.
    if (cfg.strategy === 'best-effort') return { ok: true };
    return { ok: false, waitMs: 60_000, why: `cannot take the etcd reboot lock: ${(e as Error).message}` };
  }
}

/** Gives back the etcd lock once this boot is committed (locksmith's unlock after a good boot). */
async function releaseLockIfCommitted(cfg: UpdateConfig, env: AgentEnv, lock: RebootLock): Promise<void> {
  if (cfg.strategy !== 'etcd-lock' && cfg.strategy !== 'best-effort') return;
  const booted = requireBooted(env);
  if (!readSlotState(env.esp).state[booted].ok) return;
  try {
    await lock.unlock();
  } catch (e) {
    if (cfg.strategy === 'etcd-lock') env.log(`cannot release the etcd reboot lock: ${(e as Error).message}`);
  }
}

/** One round: apply anything newer, then reboot if an update is staged and the strategy allows. */
export async function agentRound(env: AgentEnv, d: DaemonDeps): Promise<{ nextMs: number }> {
  let cfg: UpdateConfig;
  try {
    cfg = d.loadConfig();
  } catch (e) {
    env.log(`${(e as Error).message}; not updating until it is fixed`);
    return { nextMs: 300_000 };
  }
  const lock = () =>
    new RebootLock({
      endpoints: cfg.etcd.endpoints,
      group: cfg.etcd.group,
      id: d.machineId,
      username: cfg.etcd.username,
      password: cfg.etcd.password,
    });
  await releaseLockIfCommitted(cfg, env, lock()).catch((e) => env.log((e as Error).message));
  if (cfg.server) {
    try {
      const r = await applyUpdate(cfg, env);
      if (r.status === 'staged') env.log(`update ${r.version} written to slot ${r.slot} in ${r.seconds.toFixed(1)}s`);
    } catch (e) {
      env.log((e as Error).message);
    }
  }
  const booted = requireBooted(env);
  const state = readSlotState(env.esp).state;
  const staged = stagedSlot(state, booted);
  // On a trial boot, look again soon: once the gate commits it, the etcd lock goes back and
  // updates are allowed again.
  const interval = state[booted].ok
    ? cfg.checkIntervalSeconds * 1000
    : Math.min(cfg.checkIntervalSeconds * 1000, 30_000);
  if (!staged) return { nextMs: interval };
  const may = await mayReboot(cfg, (d.now ?? (() => new Date()))(), lock);
  if (may.ok) {
    env.log(`rebooting into slot ${staged} (REBOOT_STRATEGY=${cfg.strategy})`);
    await d.reboot();
    return { nextMs: interval };
  }
  env.log(`an update is staged in slot ${staged}; ${may.why}`);
  return { nextMs: Math.min(interval, may.waitMs) };
}

/** The agent's loop; never returns. */
export async function runAgent(env: AgentEnv, d: DaemonDeps, firstDelayMs: number): Promise<never> {
  const sleep = d.sleep ?? sleepFor;
  await sleep(firstDelayMs);
  for (;;) {
    const { nextMs } = await agentRound(env, d).catch((e) => {
      env.log(`update round failed: ${(e as Error).message}`);
      return { nextMs: 300_000 };
    });
    // ±10% so a fleet started together does not check (and reboot) together.
    await sleep(nextMs * (0.9 + Math.random() * 0.2));
  }
}
