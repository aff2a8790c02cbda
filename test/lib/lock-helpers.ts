// Another process that takes a file lock (lib/lock.ts on the helper's flock), driven line by line.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const LOCKS = fileURLToPath(new URL('../../native/locks.js', import.meta.url));

// hold: tryLock, print "locked" (or "busy"). block: print "waiting", lockSync(Infinity). poll: print
// "waiting", await lock(). Once it holds the lock it prints "got WITNESS" (the witness file's text,
// or "missing") and keeps it, without releasing, until stdin closes or a signal kills it.
const SCRIPT = `
import { existsSync, readFileSync } from 'node:fs';
import { locks } from ${JSON.stringify(LOCKS)};
const [mode, path, witness] = process.argv.slice(1);
const got = () => console.log('got ' + (existsSync(witness) ? readFileSync(witness, 'utf8') : 'missing'));
if (mode === 'hold') console.log(locks.tryLock(path) ? 'locked' : 'busy');
else if (mode === 'block') { console.log('waiting'); locks.lockSync(path, Infinity); got(); }
else { console.log('waiting'); await locks.lock(path, 600000); got(); }
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

/** A child process taking the lock at `path`; `line()` resolves with its next line of output. */
export interface LockChild {
  child: ChildProcess;
  pid: number;
  line(): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a lock-taking child (see SCRIPT for the modes). */
export function lockChild(mode: 'hold' | 'block' | 'poll', path: string, witness = `${path}.witness`): LockChild {
  const args = ['--input-type=module', '-e', SCRIPT, mode, path, witness];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => {
    child.once('exit', (code, signal) => r({ code, signal }));
  });
  const lines: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(l);
      else lines.push(l);
    }
  });
  const line = () => {
    const l = lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return Promise.race([
      new Promise<string>((r) => waiters.push(r)),
      exited.then((e) => {
        throw new Error(`lock child ${mode} exited (${e.code ?? e.signal}) before printing a line`);
      }),
    ]);
  };
  return { child, pid: child.pid!, line, exited };
}

/** True when /proc/locks shows `pid` blocked waiting for an flock (a "->" line). */
export function blockedInFlock(pid: number): boolean {
  const waiting = new RegExp(`^\\d+: -> FLOCK\\s+ADVISORY\\s+WRITE\\s+${pid}\\s`);
  return readFileSync('/proc/locks', 'utf8')
    .split('\n')
    .some((l) => waiting.test(l));
}
