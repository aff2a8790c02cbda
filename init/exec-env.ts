// The environment a unit's process gets: PID 1's base, Environment=, EnvironmentFile=, and the
// variables systemd itself sets (MAINPID, NOTIFY_SOCKET, LISTEN_FDS, INVOCATION_ID, ...).
import { KeelError } from '../lib/errors.js';
import { readFileSync } from 'node:fs';

/** Parses an EnvironmentFile: KEY=VALUE lines, # and ; comments, quotes, backslash continuation. */
export function parseEnvironmentFile(text: string): [string, string][] {
  const out: [string, string][] = [];
  const lines = text.replace(/\\\n/g, '').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (/^"(.*)"$/.test(v)) v = v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    else if (/^'(.*)'$/.test(v)) v = v.slice(1, -1);
    else v = v.replace(/\s+#.*$/, '');
    out.push([m[1], v]);
  }
  return out;
}

/** Builds the environment map: later sources win (base < Environment= < EnvironmentFile= < extra). */
export function buildEnvironment(
  base: string[],
  environment: [string, string][],
  files: { path: string; optional: boolean }[],
  extra: Record<string, string>,
  read: (p: string) => string = (p) => readFileSync(p, 'utf8'),
): Map<string, string> {
  const env = new Map<string, string>();
  for (const kv of base) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const [k, v] of environment) env.set(k, v);
  for (const f of files) {
    let text: string;
    try {
      text = read(f.path);
    } catch (e) {
      if (f.optional) continue;
      throw new KeelError(
        (e as NodeJS.ErrnoException).code ?? 'EREAD',
        `cannot read EnvironmentFile ${f.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { path: f.path, cause: e },
      );
    }
    for (const [k, v] of parseEnvironmentFile(text)) env.set(k, v);
  }
  for (const [k, v] of Object.entries(extra)) env.set(k, v);
  return env;
}

/** The environment as "K=V" strings for execve. */
export function envList(env: Map<string, string>): string[] {
  return [...env].map(([k, v]) => `${k}=${v}`);
}
