// The update agent's operations: check the server, apply an update to the inactive slot, roll
// back. Every step that changes the slot state happens only after the step before it is proven:
// the manifest's signature before anything, the image's hashes and verity tree before the flip.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic, type AtomicFs } from '../lib/atomic.js';
import { sha256Hex } from '../lib/hash.js';
import { lockHolder } from '../lib/lock.js';
import { locks } from '../native/locks.js';
import { compareVersions, verifyManifest, type UpdateManifest } from '../slots/manifest.js';
import { NEW_SLOT_TRIES, type Slot, type SlotState } from '../slots/rule.js';
import { verifyVerity } from '../slots/verity.js';
import type { UpdateConfig } from './config.js';
import { downloadToTarget, readBack } from './download.js';
import { fetchBuffer } from '../lib/http.js';
import { UpdateError } from './errors.js';
import { bootedSlot, otherSlot, readSlotState, withSlot, writeSlotState } from '../slots/store.js';

/** What the agent works with; the OS gives real paths, tests give temporary ones. */
export interface AgentEnv {
  esp: string;
  cmdline: string;
  /** /var/lib/keel/update: checkpoint, status, rollback record. */
  stateDir: string;
  /** The ed25519 public key (PEM) baked into USR. */
  publicKey: string;
  /** The device (or file) of a slot's USR partition and its size in bytes. */
  partition(slot: Slot): { path: string; size: number } | null;
  /** VERSION_ID of the running USR, for a slot whose version grubenv does not record. */
  osVersion: string;
  log(message: string): void;
  /** The file system calls of status and checkpoint writes (node:fs when absent); tests record them. */
  fs?: AtomicFs;
}

/** What a check found. */
export interface CheckResult {
  manifest: UpdateManifest;
  manifestSha256: string;
  imageUrl: string;
  current: string;
  newer: boolean;
}

/** The agent's phase, kept in status.json for `keel update status`. */
export interface AgentStatus {
  phase: 'idle' | 'checking' | 'downloading' | 'verifying' | 'staged' | 'error';
  at: string;
  version?: string;
  slot?: Slot;
  progress?: { doneBytes: number; totalBytes: number; bytesPerSecond: number };
  error?: string;
  lastCheck?: string;
}

/** The booted slot, or an error: updates need to know which slot is safe to overwrite. */
export function requireBooted(env: AgentEnv): Slot {
  const s = bootedSlot(env.cmdline);
  if (!s)
    throw new UpdateError(
      'ENOSLOT',
      'cannot update: this boot did not come from an A/B slot (no keel.slot= on the kernel command line)',
    );
  return s;
}

/** The version the running system counts as current. */
export function currentVersion(state: SlotState, booted: Slot, osVersion: string): string {
  return state[booted].version ?? osVersion;
}

/** The group's directory on the server: SERVER/GROUP/. */
export function groupUrl(cfg: UpdateConfig): string {
  if (!cfg.server)
    throw new UpdateError(
      'ENOSERVER',
      'cannot check for updates: no update server is configured (SERVER= in ' +
        '/etc/keel/update.conf, or coreos.update.server in cloud-config)',
    );
  return `${cfg.server.replace(/\/+$/, '')}/${encodeURIComponent(cfg.group)}/`;
}

/** Fetches and verifies the group's manifest; says whether it is newer than what runs. */
export async function checkForUpdate(cfg: UpdateConfig, env: AgentEnv, signal?: AbortSignal): Promise<CheckResult> {
  const base = groupUrl(cfg);
  const booted = requireBooted(env);
  const bytes = await fetchBuffer(`${base}manifest.json`, { maxBytes: 1 << 20, ...(signal ? { signal } : {}) });
  const sig = await fetchBuffer(`${base}manifest.json.sig`, { maxBytes: 4096, ...(signal ? { signal } : {}) });
  const manifest = verifyManifest(bytes, sig.toString('utf8'), env.publicKey);
  const current = currentVersion(readSlotState(env.esp).state, booted, env.osVersion);
  return {
    manifest,
    manifestSha256: sha256Hex(bytes),
    imageUrl: new URL(manifest.image, base).toString(),
    current,
    newer: compareVersions(manifest.version, current) > 0,
  };
}

/** Writes status.json atomically (a temp file of its own, fsync, rename, fsync of the directory). */
export function writeStatus(env: AgentEnv, s: Omit<AgentStatus, 'at'>): void {
  const file = join(env.stateDir, 'status.json');
  const prev = readStatus(env.stateDir);
  const data =
    JSON.stringify({ ...(prev?.lastCheck ? { lastCheck: prev.lastCheck } : {}), ...s, at: new Date().toISOString() }) +
    '\n';
  writeAtomic(file, data, env.fs ? { fs: env.fs } : {});
}

/** The last status written, or null. */
export function readStatus(stateDir: string): AgentStatus | null {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8'));
  } catch {
    return null;
  }
}

/**
 * One update at a time: an flock(2) on stateDir/lock, which the kernel drops when its holder dies,
 * so a lock file left by a crash or a power cut (whatever pid it names) never stops the next update.
 * Never waits: a running update makes this one fail at once.
 */
export function takeLock(stateDir: string): () => void {
  mkdirSync(stateDir, { recursive: true });
  const file = join(stateDir, 'lock');
  const held = locks.tryLock(file);
  if (!held) {
    const pid = lockHolder(file);
    const who = pid ? `pid ${pid}` : `it holds ${file}`;
    throw new UpdateError('EBUSY', `cannot start an update: another one is running (${who})`);
  }
  return () => held.release();
}

/** Options of apply. */
export interface ApplyOptions {
  /** Accept the same or an older version (an operator's explicit choice). */
  force?: boolean;
  signal?: AbortSignal;
  progress?: (p: { doneBytes: number; totalBytes: number; resumedBytes: number; bytesPerSecond: number }) => void;
}

/** What apply did. */
export type ApplyResult =
  | { status: 'up-to-date'; current: string }
  | { status: 'already-staged'; version: string; slot: Slot }
  | { status: 'staged'; version: string; slot: Slot; resumedChunks: number; seconds: number };

/**
 * Downloads the group's update into the inactive slot and makes it the next boot (TRIES=3, OK=0).
 * Refused, with the slot state untouched: a bad signature, an older version (unless forced), an
 * image larger than the slot, and any update while this boot is still on trial (the other slot
 * is then the only known-good system).
 */
export async function applyUpdate(cfg: UpdateConfig, env: AgentEnv, o: ApplyOptions = {}): Promise<ApplyResult> {
  const release = takeLock(env.stateDir);
  try {
    writeStatus(env, { phase: 'checking' });
    const check = await checkForUpdate(cfg, env, o.signal);
    writeStatus(env, { phase: 'checking', lastCheck: new Date().toISOString() });
    const { manifest } = check;
    const booted = requireBooted(env);
    const target = otherSlot(booted);
    const { state } = readSlotState(env.esp);
    if (!o.force && !check.newer) {
      if (compareVersions(manifest.version, check.current) < 0) {
        throw new UpdateError(
          'EDOWNGRADE',
          `cannot apply update ${manifest.version}: it is older than the running ` +
            `${check.current} (an operator can force it with keel update apply --force)`,
        );
      }
      writeStatus(env, { phase: 'idle' });
      return { status: 'up-to-date', current: check.current };
    }
    if (!state[booted].ok) {
      throw new UpdateError(
        'ETRIAL',
        `cannot apply update ${manifest.version} yet: this boot (slot ${booted}) is not ` +
          `committed, and slot ${target} is the system to fall back to`,
      );
    }
    const t = state[target];
    if (
      state.order[0] === target &&
      !t.ok &&
      t.tries > 0 &&
      t.hash === manifest.verity!.rootHash &&
      t.version === manifest.version
    ) {
      writeStatus(env, { phase: 'staged', version: manifest.version, slot: target });
      return { status: 'already-staged', version: manifest.version, slot: target };
    }
    const part = env.partition(target);
    if (!part)
      throw new UpdateError('ENOPART', `cannot apply update ${manifest.version}: partition USR-${target} not found`);
    if (manifest.size > part.size) {
      throw new UpdateError(
        'ETOOBIG',
        `cannot apply update ${manifest.version}: the image is ` +
          `${manifest.size} bytes, slot ${target} holds ${part.size}`,
      );
    }
    // From here the target slot is being overwritten: it must not be bootable until proven.
    if (t.ok || t.tries > 0 || t.hash || state.order[0] !== booted) {
      writeSlotState(env.esp, withSlot(state, target, null, [booted, target]));
      env.log(`slot ${target} marked not bootable: writing update ${manifest.version} into it`);
    }
    const t0 = performance.now();
    writeStatus(env, { phase: 'downloading', version: manifest.version, slot: target });
    let lastWrite = 0;
    const dl = await downloadToTarget({
      url: check.imageUrl,
      manifest,
      manifestSha256: check.manifestSha256,
      target: part.path,
      targetSize: part.size,
      checkpointFile: join(env.stateDir, 'checkpoint.json'),
      signal: o.signal,
      ...(env.fs ? { fs: env.fs } : {}),
      progress: (p) => {
        o.progress?.(p);
        if (Date.now() - lastWrite > 1000) {
          lastWrite = Date.now();
          writeStatus(env, {
            phase: 'downloading',
            version: manifest.version,
            slot: target,
            progress: { doneBytes: p.doneBytes, totalBytes: p.totalBytes, bytesPerSecond: p.bytesPerSecond },
          });
        }
      },
    });
    if (dl.resumedChunks)
      env.log(`resumed update ${manifest.version}: ${dl.resumedChunks} chunks were already written`);
    writeStatus(env, { phase: 'verifying', version: manifest.version, slot: target });
    const back = await readBack(part.path, manifest);
    const tree = back.ok ? verifyVerity(part.path, manifest.verity!.hashOffset, manifest.verity!.rootHash) : back;
    if (!tree.ok) {
      rmSync(join(env.stateDir, 'checkpoint.json'), { force: true });
      throw new UpdateError(
        'EVERIFY',
        `cannot apply update ${manifest.version}: slot ${target} does not read back as written: ${tree.reason}`,
      );
    }
    const next = withSlot(
      readSlotState(env.esp).state,
      target,
      { ok: false, tries: NEW_SLOT_TRIES, hash: manifest.verity!.rootHash, version: manifest.version },
      [target, booted],
    );
    writeSlotState(env.esp, next);
    rmSync(join(env.stateDir, 'checkpoint.json'), { force: true });
    env.log(`update ${manifest.version} staged in slot ${target}: it boots next, with ${NEW_SLOT_TRIES} tries`);
    writeStatus(env, { phase: 'staged', version: manifest.version, slot: target });
    return {
      status: 'staged',
      version: manifest.version,
      slot: target,
      resumedChunks: dl.resumedChunks,
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    writeStatus(env, { phase: 'error', error: (e as Error).message });
    throw e;
  } finally {
    release();
  }
}

/** Whether an update waits for a reboot: the next boot is another slot, on trial. */
export function stagedSlot(state: SlotState, booted: Slot): Slot | null {
  const next = state.order[0];
  return next !== booted && !state[next].ok && state[next].tries > 0 ? next : null;
}

/** Makes the other slot, if it holds a good system, the next boot. */
export function rollback(env: AgentEnv): { to: Slot; version?: string } {
  const booted = requireBooted(env);
  const to = otherSlot(booted);
  const { state } = readSlotState(env.esp);
  if (!state[to].ok || !state[to].hash) {
    throw new UpdateError('ENOROLLBACK', `cannot roll back: slot ${to} holds no system known to be good`);
  }
  writeSlotState(env.esp, { ...state, order: [to, booted] });
  env.log(`rollback: slot ${to}${state[to].version ? ` (version ${state[to].version})` : ''} boots next`);
  return { to, ...(state[to].version ? { version: state[to].version } : {}) };
}
