// keel container-monitor ID (started by keel run -d): runs the container with its output in
// the container's log, records how it ended, restarts it as its policy says, removes it for --rm.
// With -t each run gets a terminal whose output we copy to the log (raw, as docker logs shows a
// tty container's); attach.sock tells keel attach the exit status and takes its input (-i) and
// window size (-t) (containers/attach-protocol.ts).
import { closeSync, openSync, watch, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Verb } from './main.js';
import { ATTACH_SOCKET, listenAttach } from '../containers/attach-protocol.js';
import { ContainerDb, processStartTime, type ContainerConfig } from '../containers/db.js';
import { finished, released, shouldRestart, start } from '../containers/engine.js';
import { holdTerminal, requestConsole } from '../containers/pty.js';
import type { ContainerExit, RunningContainer } from '../containers/runtime.js';
import type { ImageStore } from '../containers/store.js';
import { native } from '../native/native.js';
import { ROOT_OPTION, storeAt } from './container-common.js';
import { monitorHooks } from './monitor-hooks.js';

/** A detached terminal's size until keel attach sends its own. */
const DETACHED_SIZE = { rows: 24, cols: 80 };

/** One run of the container, and where attach.sock's frames go meanwhile. */
interface Run {
  c: RunningContainer;
  /** Its stdin: a pipe (-i) or the terminal (-t); null when it has none of ours. */
  input: Socket | null;
  resize(rows: number, cols: number): void;
  /** Its exit, once its output is all in the log. */
  ended: Promise<ContainerExit>;
}

/**
 * Starts the container once: 1 and 2 into its log, 0 a pipe of ours with -i (else /dev/null); with -t all three its
 * terminal.
 */
function startRun(db: ContainerDb, store: ImageStore, config: ContainerConfig, restarts: number): Run {
  const log = openSync(db.path(config.id, 'container.log'), 'a');
  if (config.tty) {
    const pending = requestConsole(DETACHED_SIZE);
    let c: RunningContainer | undefined;
    let term;
    try {
      c = start(db, store, config, { console: pending.request }, restarts);
      term = pending.receive();
    } catch (e) {
      // Started but without a terminal: not as asked, and nobody could reach it.
      c?.kill();
      closeSync(log);
      throw e;
    } finally {
      pending.close();
    }
    // The log is the terminal's only reader: a write that fails (disk full) loses output, not the container.
    const held = holdTerminal(term, (chunk) => {
      try {
        writeSync(log, chunk);
      } catch {
        /* lost */
      }
    });
    // Our stderr goes nowhere: a terminal that fails (not its normal end) is said in the state (keel inspect).
    void held.eof.then((e) => {
      if (e)
        try {
          db.setState(config.id, { ...db.state(config.id), error: e.message });
        } catch {
          /* removed */
        }
    });
    const ended = c.wait().then(async (exit) => {
      // Output still in the terminal comes until every holder of the slave closed it; at most 1 s more.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        held.eof,
        new Promise((r) => {
          timer = setTimeout(r, 1000);
        }),
      ]);
      clearTimeout(timer);
      held.close();
      closeSync(log);
      return exit;
    });
    return { c, input: held.input, resize: held.resize, ended };
  }
  const pipe = config.interactive ? native.pipe() : null;
  const stdin = pipe ? pipe[0] : openSync('/dev/null', 'r');
  let c: RunningContainer;
  try {
    c = start(db, store, config, { stdin, stdout: log, stderr: log }, restarts);
  } catch (e) {
    if (pipe) closeSync(pipe[1]);
    throw e;
  } finally {
    closeSync(stdin);
    closeSync(log);
  }
  // We keep the write end open (docker's -i): the container reads EOF only when it exits or closes its stdin.
  const input = pipe ? new Socket({ fd: pipe[1], readable: false, writable: true }) : null;
  input?.on('error', () => {
    /* EPIPE: it closed its stdin */
  });
  const ended = c.wait().then((exit) => {
    input?.destroy();
    return exit;
  });
  return { c, input, resize: () => {}, ended };
}

/** A stop, by SIGTERM to us or keel stop's request in the container's directory: asked yet, and a promise of it. */
interface StopWatch {
  requested(): boolean;
  /** Resolves on the first stop. */
  come: Promise<void>;
  /** SIGTERM to us: `onStop` runs (once). */
  signal(): void;
  close(): void;
}

/** Watches for a stop of container `id`; `onStop` runs once, on the first one (keel stop's or a SIGTERM). */
function watchStop(db: ContainerDb, id: string, onStop: () => void): StopWatch {
  let signalled = false;
  let fire!: () => void;
  const come = new Promise<void>((r) => {
    fire = r;
  });
  let fired = false;
  const requested = () => signalled || db.stopRequested(id);
  const check = () => {
    if (!fired && requested()) {
      fired = true;
      fire();
      onStop();
    }
  };
  // keel stop writes stop-requested (a rename into the directory); it signals the container only while it runs.
  let watcher: ReturnType<typeof watch> | null = null;
  try {
    watcher = watch(db.path(id), check);
    watcher.on('error', () => {});
  } catch {
    /* removed: keel rm */
  }
  return {
    requested,
    come,
    signal() {
      signalled = true;
      check();
    },
    close() {
      watcher?.close();
    },
  };
}

export const verb: Verb = {
  summary: 'Supervise one detached container (started by keel run -d; not for direct use).',
  usage: 'keel container-monitor [--root DIR] ID',
  options: { ...ROOT_OPTION },
  async run(v, [id]) {
    const db = new ContainerDb(String(v.root));
    const store = storeAt(v);
    const { config } = db.resolve(id);
    const hooks = await monitorHooks(process.env.KEEL_MONITOR_HOOKS);
    let current: Run | null = null;
    // One handler for every run, there before the first (a stop before it starts means no start).
    // keel stop signals the container directly; SIGTERM to us means the same, whenever it comes.
    const stop = watchStop(db, config.id, () => {
      if (current) void current.c.stop(10_000);
    });
    const onTerm = () => {
      hooks.say('SIGTERM');
      stop.signal();
    };
    process.on('SIGTERM', onTerm);
    // Listening before the first start, so it is there once keel run -d says the container runs.
    // Frames go to the current run; between runs (a restart's wait) they are dropped.
    // Every detached container has one: attach learns the exit status there even when --rm removes the container.
    const server = await listenAttach(db.path(config.id, ATTACH_SOCKET), {
      input(data, resume) {
        const sink = config.interactive ? current?.input : null;
        if (!sink || sink.destroyed || sink.write(data)) return true;
        const go = () => {
          sink.off('drain', go);
          sink.off('close', go);
          resume();
        };
        sink.on('drain', go);
        sink.on('close', go);
        return false;
      },
      resize(rows, cols) {
        current?.resize(rows, cols);
      },
    }).catch((e: Error) => {
      // Fatal: recorded as a failed start, which keel run -d reports.
      db.setState(config.id, {
        ...db.state(config.id),
        status: 'exited',
        exitCode: 127,
        finishedAt: new Date().toISOString(),
        error: `cannot listen on ${ATTACH_SOCKET}: ${e.message}`,
      });
      process.off('SIGTERM', onTerm);
      stop.close();
      throw e;
    });
    let restarts = 0;
    try {
      for (;;) {
        // Stopped before the first start or during a restart's wait: no (new) start.
        if (stop.requested()) {
          const s = db.state(config.id);
          if (s.status === 'created')
            db.setState(config.id, {
              ...s,
              status: 'exited',
              finishedAt: new Date().toISOString(),
              error: 'stopped before it started',
            });
          else if (s.status === 'restarting') db.setState(config.id, { ...s, status: 'exited' });
          break;
        }
        await hooks.at(`start ${restarts}`);
        const run = startRun(db, store, config, restarts);
        current = run;
        // A stop while it started (keel stop found nothing running to signal): this run ends at once.
        if (stop.requested()) void run.c.stop(10_000);
        await hooks.at(`running ${restarts}`);
        const exit = await run.ended;
        current = null;
        await hooks.at(`exited ${restarts}`);
        const recorded = finished(db, config.id, exit);
        server.exited(recorded.exitCode ?? 0);
        if (!shouldRestart(config, exit, restarts, stop.requested())) break;
        restarts++;
        // docker's "Restarting (N)": waiting to start again (db.state() tells a monitor gone from one still waiting).
        db.setState(config.id, {
          ...recorded,
          status: 'restarting',
          monitorPid: process.pid,
          monitorStartTime: processStartTime(process.pid) ?? '',
        });
        const ms = Math.min(100 * 2 ** restarts, 10_000);
        let timer: NodeJS.Timeout | undefined;
        const slept = process.env.KEEL_MONITOR_HOOKS
          ? hooks.at(`sleep ${restarts}`)
          : new Promise<void>((r) => {
              timer = setTimeout(r, ms);
            });
        await Promise.race([slept, stop.come]);
        clearTimeout(timer);
      }
    } finally {
      process.off('SIGTERM', onTerm);
      stop.close();
      server.close();
      // Stopped for good: its address, published ports and network namespace go (kept across restarts).
      released(db, config.id);
      if (config.autoRemove) db.remove(config.id);
      hooks.say('end');
      hooks.close();
    }
    return 0;
  },
};
