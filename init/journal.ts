// The journal: every unit's stdout/stderr and kernel messages, in a memory ring and in
// size-rotated JSON-lines files under /var/log/keel.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** One journal record. `ts` is wall-clock ms, `mono` ms since boot. */
export interface JournalEntry {
  seq: number;
  ts: number;
  mono: number;
  boot: string;
  unit: string;
  pid?: number;
  priority: number;
  message: string;
}

/** What to read: like journalctl's -u, --since, -n and -b. */
export interface JournalQuery {
  unit?: string;
  since?: number;
  lines?: number;
  currentBoot?: boolean;
}

/** Options of a journal; `dir: null` keeps it in memory only. */
export interface JournalOptions {
  bootId: string;
  dir?: string | null;
  ringSize?: number;
  maxFileBytes?: number;
  keepFiles?: number;
  now?: () => number;
  mono?: () => number;
}

const FILE = 'journal.jsonl';

/** True when an entry passes a query's filters (not its line count). */
export function matches(e: JournalEntry, q: JournalQuery, bootId: string): boolean {
  return (
    (!q.unit || e.unit === q.unit) &&
    (q.since === undefined || e.ts >= q.since) &&
    (!q.currentBoot || e.boot === bootId)
  );
}

/** The journal of one boot, with the persistent files of earlier ones. */
export class Journal {
  private ring: JournalEntry[] = [];
  private seq = 0;
  private followers = new Set<{ q: JournalQuery; cb: (e: JournalEntry) => void }>();
  private bytes = 0;
  private persistFailed = false;
  readonly opts: Required<Omit<JournalOptions, 'dir'>> & { dir: string | null };

  constructor(opts: JournalOptions) {
    this.opts = {
      ringSize: 20_000,
      maxFileBytes: 8 << 20,
      keepFiles: 4,
      dir: null,
      now: () => Date.now(),
      mono: monotonicMs,
      ...opts,
    };
    if (this.opts.dir) {
      try {
        mkdirSync(this.opts.dir, { recursive: true });
        this.bytes = existsSync(this.file()) ? statSync(this.file()).size : 0;
      } catch {
        this.persistFailed = true;
      }
    }
  }

  private file(n = 0): string {
    return join(this.opts.dir!, n ? `${FILE}.${n}` : FILE);
  }

  /** Records one message (a trailing newline is dropped) and tells the followers. */
  append(unit: string, message: string, extra: { pid?: number; priority?: number; ts?: number } = {}): JournalEntry {
    const e: JournalEntry = {
      seq: ++this.seq,
      ts: extra.ts ?? this.opts.now(),
      mono: Math.round(this.opts.mono()),
      boot: this.opts.bootId,
      unit,
      ...(extra.pid !== undefined ? { pid: extra.pid } : {}),
      priority: extra.priority ?? 6,
      message: message.replace(/\n$/, ''),
    };
    this.ring.push(e);
    if (this.ring.length > this.opts.ringSize) this.ring.splice(0, this.ring.length - this.opts.ringSize);
    this.persist(e);
    for (const f of this.followers) {
      if (matches(e, f.q, this.opts.bootId)) {
        try {
          f.cb(e);
        } catch {
          /* a broken follower must not break logging */
        }
      }
    }
    return e;
  }

  private persist(e: JournalEntry): void {
    if (!this.opts.dir || this.persistFailed) return;
    const line = JSON.stringify(e) + '\n';
    try {
      if (this.bytes + line.length > this.opts.maxFileBytes) this.rotate();
      appendFileSync(this.file(), line);
      this.bytes += Buffer.byteLength(line);
    } catch {
      // /var full or read-only: keep the ring going, stop trying the disk.
      this.persistFailed = true;
    }
  }

  /** Moves journal.jsonl to .1, .1 to .2, ... dropping the oldest beyond keepFiles. */
  rotate(): void {
    rmSync(this.file(this.opts.keepFiles), { force: true });
    for (let n = this.opts.keepFiles - 1; n >= 0; n--)
      if (existsSync(this.file(n))) renameSync(this.file(n), this.file(n + 1));
    this.bytes = 0;
  }

  /** Entries matching `q`, oldest first; reads the files for what the ring no longer holds. */
  query(q: JournalQuery = {}): JournalEntry[] {
    let out = this.ring.filter((e) => matches(e, q, this.opts.bootId));
    const oldestInRing = this.ring[0]?.seq ?? Infinity;
    const wantOlder = !q.currentBoot || oldestInRing > 1;
    if (this.opts.dir && wantOlder && (q.lines === undefined || out.length < q.lines)) {
      const older = this.readFiles().filter(
        (e) => matches(e, q, this.opts.bootId) && !(e.boot === this.opts.bootId && e.seq >= oldestInRing),
      );
      out = [...older, ...out];
    }
    return q.lines !== undefined ? out.slice(Math.max(0, out.length - q.lines)) : out;
  }

  private readFiles(): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (let n = this.opts.keepFiles; n >= 0; n--) {
      let text = '';
      try {
        text = readFileSync(this.file(n), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          out.push(JSON.parse(line));
        } catch {
          /* a torn last line after a crash */
        }
      }
    }
    return out;
  }

  /** Calls `cb` for every new entry matching `q` until the returned function is called. */
  follow(q: JournalQuery, cb: (e: JournalEntry) => void): () => void {
    const f = { q, cb };
    this.followers.add(f);
    return () => this.followers.delete(f);
  }
}

// performance.now() counts from this process's start; /proc/uptime from the kernel's.
let monoBase: number | undefined;
/** Milliseconds since the kernel started (monotonic). */
export function monotonicMs(): number {
  if (monoBase === undefined) {
    try {
      monoBase = parseFloat(readFileSync('/proc/uptime', 'utf8')) * 1000 - performance.now();
    } catch {
      monoBase = 0;
    }
  }
  return monoBase + performance.now();
}

/** Splits a byte stream into lines, calling `line` for each; partial lines wait for more (or the end). */
export function lineSplitter(
  line: (text: string) => void,
  maxLine = Infinity,
): { push(chunk: Buffer): void; end(): void } {
  let buf = '';
  return {
    push(chunk) {
      buf += chunk.toString('utf8');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        line(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      while (buf.length > maxLine) {
        line(buf.slice(0, maxLine));
        buf = buf.slice(maxLine);
      }
    },
    end() {
      if (buf) line(buf);
      buf = '';
    },
  };
}

/** Parses one /dev/kmsg record ("6,339,5140900,-;text") into priority, µs since boot and text. */
export function parseKmsg(record: string): { priority: number; usec: number; message: string } | null {
  const m = /^(\d+),(\d+),(\d+),[^;]*;([^\n]*)/.exec(record);
  if (!m) return null;
  return { priority: Number(m[1]) & 7, usec: Number(m[3]), message: m[4] };
}
