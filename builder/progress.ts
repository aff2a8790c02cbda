// Progress for long builder steps: one line per step with its time, to stderr.

/** Something that hears about steps; tests pass a silent one. */
export interface Progress {
  step<T>(title: string, fn: () => Promise<T>): Promise<T>;
  note(text: string): void;
}

/** Progress printed to a stream as "[n] title ... done in 1.2s (cached)". */
export function consoleProgress(out: NodeJS.WritableStream = process.stderr): Progress {
  let n = 0;
  const tty = (out as { isTTY?: boolean }).isTTY === true;
  return {
    async step(title, fn) {
      const i = ++n;
      const t0 = performance.now();
      if (tty) out.write(`[${i}] ${title} ...`);
      else out.write(`[${i}] ${title}\n`);
      let ticker: NodeJS.Timeout | undefined;
      if (tty) ticker = setInterval(() => out.write('.'), 2000);
      try {
        const r = await fn();
        const secs = ((performance.now() - t0) / 1000).toFixed(1);
        out.write(tty ? ` done in ${secs}s\n` : `[${i}] ${title}: done in ${secs}s\n`);
        return r;
      } catch (e) {
        out.write(tty ? ' failed\n' : `[${i}] ${title}: failed\n`);
        throw e;
      } finally {
        if (ticker) clearInterval(ticker);
      }
    },
    note(text) {
      out.write(`    ${text}\n`);
    },
  };
}

/** Progress that prints nothing. */
export const silentProgress: Progress = { step: (_t, fn) => fn(), note: () => {} };
