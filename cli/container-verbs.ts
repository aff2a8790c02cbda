// keel stop/logs with a container instead of a unit: docker's verbs share names with
// systemctl's, so an argument that names a container (and no unit) goes to the container side.
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { ContainerDb, processStartTime, type ContainerState } from '../containers/db.js';
import { DEFAULT_ROOT } from '../containers/store.js';

const UNIT_SUFFIX = /\.(service|socket|target|timer|path|mount|automount|swap|slice|scope|device)$/;

/** The containers `names` resolve to, when every one of them is a container and none a unit name. */
export function asContainers(names: string[], root = DEFAULT_ROOT): ContainerDb | null {
  if (!names.length || names.some((n) => UNIT_SUFFIX.test(n)) || !existsSync(root)) return null;
  const db = new ContainerDb(root);
  try {
    for (const n of names) db.resolve(n);
  } catch {
    return null;
  }
  return db;
}

/** Whether the process `pid` started at `startTime` still runs (a zombie has ended: only its reaping is left). */
function running(pid: number, startTime: string): boolean {
  if (processStartTime(pid) !== startTime) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** The container's state, or null once it is removed (a --rm container's CLI removes it as it ends). */
function stateOf(db: ContainerDb, id: string): ContainerState | null {
  try {
    return db.state(id);
  } catch {
    return null;
  }
}

/**
 * docker stop: SIGTERM, then SIGKILL after `graceSeconds`; returns once it has exited, its exit is
 * recorded, and the foreground `keel run` waiting for it (if any) has ended as well. That last wait
 * is what makes a .container service stop the same way every time: keel stop is its ExecStop=, and
 * the manager signals a main process (that keel run) still there when ExecStop= returns.
 */
export async function stopContainer(db: ContainerDb, name: string, graceSeconds: number): Promise<void> {
  const { config, state } = db.resolve(name);
  db.requestStop(config.id);
  if (state.status !== 'running') return;
  const alive = () => processStartTime(state.pid) === state.startTime;
  try {
    process.kill(state.pid, 'SIGTERM');
  } catch {
    /* gone already */
  }
  const until = Date.now() + graceSeconds * 1000;
  while (alive() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  if (alive())
    try {
      process.kill(state.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  // The monitor (or the foreground CLI) records the exit, then that CLI ends; wait for both, briefly.
  const pause = () => new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 100 && stateOf(db, config.id)?.status === 'running'; i++) await pause();
  const cli = state.cliPid;
  if (!cli || !state.cliStartTime) return;
  for (let i = 0; i < 200 && running(cli, state.cliStartTime); i++) await pause();
}

/** Prints a container's log (the last `tail` lines, or all), then follows it while it runs. */
export async function printContainerLog(
  db: ContainerDb,
  name: string,
  o: { follow: boolean; tail: number | null },
): Promise<void> {
  const { config } = db.resolve(name);
  const file = db.path(config.id, 'container.log');
  if (!existsSync(file)) return;
  const text = readFrom(file, 0);
  let lines = text.split(/(?<=\n)/);
  if (o.tail !== null) lines = lines.slice(Math.max(0, lines.length - o.tail));
  process.stdout.write(lines.join(''));
  if (!o.follow) return;
  let pos = Buffer.byteLength(text);
  for (;;) {
    const size = statSync(file).size;
    if (size > pos) {
      process.stdout.write(readFrom(file, pos));
      pos = size;
    }
    if (db.state(config.id).status !== 'running' && statSync(file).size === pos) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function readFrom(file: string, pos: number): string {
  const fd = openSync(file, 'r');
  try {
    const n = statSync(file).size - pos;
    const b = Buffer.alloc(Math.max(0, n));
    readSync(fd, b, 0, b.length, pos);
    return b.toString('utf8');
  } finally {
    closeSync(fd);
  }
}
