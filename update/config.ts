// /etc/keel/update.conf: the updater's settings, an environment-style file (KEY=VALUE lines, `#`
// comments, optional single or double quotes) written by cloud-config from `coreos.update` and
// holding locksmith's LOCKSMITHD_* keys as Flatcar's /etc/flatcar/update.conf does. A bad value is
// an error naming file, line and value (a typo must not silently turn into a default); unknown
// keys are ignored, so a file written for Flatcar keeps working.
import { KeelError } from '../lib/errors.js';
import { readFileSync } from 'node:fs';
import { parseWindowLength, parseWindowStart, RebootWindowError } from './reboot-window.js';

export type RebootStrategy = 'reboot' | 'off' | 'etcd-lock' | 'best-effort';

export interface UpdateConfig {
  /** Update server URL; null = the built-in default. */
  server: string | null;
  group: string;
  strategy: RebootStrategy;
  /** The raw (validated) window strings; parse them with parseWindow. */
  window: { start: string; length: string } | null;
  etcd: { endpoints: string[]; group: string | null; username?: string; password?: string };
  checkIntervalSeconds: number;
  healthySeconds: number;
}

export const DEFAULT_UPDATE_CONF = '/etc/keel/update.conf';
export const STRATEGIES: readonly RebootStrategy[] = ['reboot', 'off', 'etcd-lock', 'best-effort'];

/** code: 'syntax' (not KEY=VALUE), 'bad-value', or 'unreadable' (line 0). */
export class UpdateConfigError extends KeelError {
  constructor(
    code: string,
    readonly file: string,
    readonly line: number,
    message: string,
    cause?: unknown,
  ) {
    super(code, line > 0 ? `${file}:${line}: ${message}` : `${file}: ${message}`, { path: file, cause });
    this.name = 'UpdateConfigError';
  }
}

export function defaultUpdateConfig(): UpdateConfig {
  return {
    server: null,
    group: 'stable',
    strategy: 'reboot',
    window: null,
    etcd: { endpoints: ['http://127.0.0.1:2379'], group: null },
    checkIntervalSeconds: 3600,
    healthySeconds: 60,
  };
}

interface Entry {
  value: string;
  line: number;
}

/** Reads a double-quoted value's content up to its closing quote; returns [content, rest of line]. */
function readDoubleQuoted(s: string): [string, string] | null {
  let out = '';
  for (let i = 1; i < s.length; i++) {
    if (s[i] === '"') return [out, s.slice(i + 1)];
    // Like the shell inside "...": a backslash escapes only these; elsewhere it stays literal.
    if (s[i] === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) i++;
    out += s[i];
  }
  return null;
}

/** A value as written after `=`: quoted (the quotes removed) or bare (trimmed, a ` #...` comment dropped). */
function unquote(raw: string): string | null {
  const s = raw.trim();
  let q: [string, string] | null;
  if (s.startsWith('"')) q = readDoubleQuoted(s);
  else if (s.startsWith("'")) {
    const end = s.indexOf("'", 1);
    q = end < 0 ? null : [s.slice(1, end), s.slice(end + 1)];
  } else {
    // Bare values may contain spaces ("Thu 23:00"), as systemd's EnvironmentFile= allows.
    return s.replace(/\s+#.*$/, '');
  }
  if (!q || !/^\s*(#.*)?$/.test(q[1])) return null; // unterminated, or text after the closing quote
  return q[0];
}

/** KEY -> last value and its line (a later assignment wins, as in an environment file). */
function readEntries(text: string, file: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$/.exec(line);
    const value = m ? unquote(m[2]) : null;
    if (!m || value === null) {
      throw new UpdateConfigError(
        'syntax',
        file,
        i + 1,
        `expected KEY=VALUE with an optionally quoted value, got ${JSON.stringify(line)}`,
      );
    }
    entries.set(m[1], { value, line: i + 1 });
  });
  return entries;
}

type Bad = (key: string, e: Entry, why: string) => UpdateConfigError;

function httpUrl(key: string, e: Entry, s: string, bad: Bad): string {
  let u: URL | null = null;
  try {
    u = new URL(s);
  } catch {
    /* reported below */
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw bad(key, e, 'is not an http:// or https:// URL');
  return s;
}

function integer(key: string, e: Entry, min: number, bad: Bad): number {
  if (!/^\d+$/.test(e.value) || Number(e.value) < min) throw bad(key, e, `is not a whole number of seconds >= ${min}`);
  return Number(e.value);
}

/** Both window keys or neither (locksmithd refuses one alone); the legacy REBOOT_WINDOW_* names are read too. */
function parseWindowKeys(get: (k: string) => Entry | undefined, file: string, bad: Bad): UpdateConfig['window'] {
  const pick = (k: string): [string, Entry] | null => {
    for (const name of [`LOCKSMITHD_${k}`, k]) {
      const e = get(name);
      if (e) return [name, e];
    }
    return null;
  };
  const start = pick('REBOOT_WINDOW_START');
  const length = pick('REBOOT_WINDOW_LENGTH');
  if (!start && !length) return null;
  if (!start || !length) {
    const [k, e] = (start ?? length)!;
    const other = start ? 'LOCKSMITHD_REBOOT_WINDOW_LENGTH' : 'LOCKSMITHD_REBOOT_WINDOW_START';
    throw new UpdateConfigError('bad-value', file, e.line, `${k} is set without ${other}: set both or neither`);
  }
  const check = ([k, e]: [string, Entry], what: string, parse: (s: string) => unknown) => {
    try {
      parse(e.value);
    } catch (err) {
      throw bad(
        k,
        e,
        `is not a valid reboot window ${what}: ${err instanceof RebootWindowError ? err.reason : String(err)}`,
      );
    }
  };
  check(start, 'start', parseWindowStart);
  check(length, 'length', parseWindowLength);
  return { start: start[1].value.trim(), length: length[1].value.trim() };
}

function parseEtcd(get: (k: string) => Entry | undefined, bad: Bad, cfg: UpdateConfig): void {
  const ep = get('LOCKSMITHD_ENDPOINT');
  if (ep) {
    const list = ep.value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length === 0) throw bad('LOCKSMITHD_ENDPOINT', ep, 'lists no endpoint');
    cfg.etcd.endpoints = list.map((u) => httpUrl('LOCKSMITHD_ENDPOINT', ep, u, bad));
  }
  cfg.etcd.group = get('LOCKSMITHD_GROUP')?.value || null;
  const user = get('LOCKSMITHD_ETCD_USERNAME');
  const pass = get('LOCKSMITHD_ETCD_PASSWORD');
  if (pass && !user) throw bad('LOCKSMITHD_ETCD_PASSWORD', pass, 'is set without LOCKSMITHD_ETCD_USERNAME');
  if (user) {
    cfg.etcd.username = user.value;
    cfg.etcd.password = pass?.value ?? '';
  }
}

/** Parses update.conf text; `file` is used in errors. An empty value means the default, as in locksmithd. */
export function parseUpdateConf(text: string, file: string): UpdateConfig {
  const entries = readEntries(text, file);
  // Empty assignments (REBOOT_STRATEGY=) count as unset.
  const get = (k: string) => {
    const e = entries.get(k);
    return e && e.value !== '' ? e : undefined;
  };
  const bad: Bad = (key, e, why) =>
    new UpdateConfigError('bad-value', file, e.line, `${key}=${JSON.stringify(e.value)} ${why}`);
  const cfg = defaultUpdateConfig();
  const server = get('SERVER');
  if (server) cfg.server = httpUrl('SERVER', server, server.value, bad);
  cfg.group = get('GROUP')?.value ?? cfg.group;
  const strategy = get('REBOOT_STRATEGY');
  if (strategy) {
    if (!STRATEGIES.includes(strategy.value as RebootStrategy))
      throw bad('REBOOT_STRATEGY', strategy, `is not one of ${STRATEGIES.join(', ')}`);
    cfg.strategy = strategy.value as RebootStrategy;
  }
  cfg.window = parseWindowKeys(get, file, bad);
  parseEtcd(get, bad, cfg);
  const interval = get('CHECK_INTERVAL');
  if (interval) cfg.checkIntervalSeconds = integer('CHECK_INTERVAL', interval, 1, bad);
  const healthy = get('HEALTHY_SECONDS');
  if (healthy) cfg.healthySeconds = integer('HEALTHY_SECONDS', healthy, 0, bad);
  return cfg;
}

/** Reads and parses the file; a missing file means all defaults. */
export function loadUpdateConf(path: string = DEFAULT_UPDATE_CONF): UpdateConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return defaultUpdateConfig();
    throw new UpdateConfigError('unreadable', path, 0, `cannot read: ${(e as Error).message}`, e);
  }
  return parseUpdateConf(text, path);
}
