// Podman Quadlet-style `.container` units (podman-systemd.unit(5)): NAME.container in a unit
// directory is the service NAME.service, whose main process is `keel run` in the foreground (it
// waits for the container and exits with its status). [Unit], [Service] and [Install] pass
// through; [Container] becomes the service's Exec*= lines. The translation is pure
// (containerToService); the loader reaches it through indexContainerUnits (names, from
// load-index.ts buildIndex) and parseUnitFile (contents, from load.ts).
//
// Keys: Image= (required), Exec=, Entrypoint=, Environment=, EnvironmentFile=, Volume=,
// ContainerName= (default systemd-%N; systemd-%p_%i for templates, as Quadlet), User=,
// WorkingDir=, HostName=, Network= (bridge|none|host; unset: keel run's default, bridge), ReadOnly=,
// AddCapability=, DropCapability=, PodmanArgs= (extra `keel run` arguments), Memory=, PidsLimit=
// (Quadlet's names), StopTimeout= (keel stop -t; default 10) and Keel's own CPUs= (Quadlet has
// none), PublishPort= ([IP:]HOST:CTR[/tcp|udp], as keel run -p; bridge only), UserNS= (host|remap; auto
// is taken as remap, with a warning). Other Quadlet keys draw a
// warning, unknown keys systemd's "Unknown key name" warning. Any error refuses the unit: it
// gets no ExecStart= (so it fails to start) and its load state is bad-setting.
//
// Values other than Exec= and PodmanArgs= reach `keel run` literally ($ is escaped); %-specifiers
// are expanded everywhere, as the generated lines go through the normal [Service] interpreter.
// Exec= and PodmanArgs= are split and substituted as ExecStart= is ($VAR, ${VAR} at spawn time).
import { posix } from 'node:path';
import type { Assignment, Diagnostic } from './types.js';
import type { UnitIndex } from './load-index.js';
import { parseUnitText } from './parse.js';
import { splitUnitName } from './names.js';
import { splitWords } from './words.js';
import { isEnvName, parseBoolean } from './values.js';
import { HOSTNAME_RULE, isHostname } from '../containers/hostname.js';

/** Where the keel CLI is in the image. */
export const DEFAULT_KEEL_BIN = '/usr/bin/keel';

/** How the generated lines call the keel CLI. */
export interface QuadletOptions {
  /** The CLI (absolute path; default /usr/bin/keel). The loader takes it from $KEEL_BIN. */
  keelBin?: string;
  /** `--root` for run, stop and rm (none: the CLI's default store). The loader takes it from $KEEL_CONTAINERS_ROOT. */
  containersRoot?: string;
}

/** The service a .container file stands for. */
export interface ContainerService {
  /** The service as unit-file text (for reading; the loader uses `assignments`). */
  unitText: string;
  /** The service's assignments, each naming the .container line it comes from. */
  assignments: Assignment[];
  /** Syntax problems, [Container] errors (each refuses the unit) and warnings. */
  diagnostics: Diagnostic[];
  /** Whether an error refused the unit: it then has no ExecStart= and fails to start. */
  refused: boolean;
}

/** Quadlet [Container] keys Keel does not implement: a warning, not "Unknown key". */
const QUADLET_UNSUPPORTED = new Set(`AddDevice AddHost Annotation AutoUpdate CgroupsMode ContainersConfModule DNS DNSOption
  DNSSearch EnvironmentHost ExposeHostPort GIDMap GlobalArgs Group GroupAdd HealthCmd HealthInterval HealthLogDestination
  HealthMaxLogCount HealthMaxLogSize HealthOnFailure HealthRetries HealthStartPeriod HealthStartupCmd HealthStartupInterval
  HealthStartupRetries HealthStartupSuccess HealthStartupTimeout HealthTimeout IP IP6 Label LogDriver LogOpt Mask Mount
  NetworkAlias NoNewPrivileges Notify Pod Pull ReadOnlyTmpfs ReloadCmd ReloadSignal Retry RetryDelay Rootfs RunInit
  SeccompProfile Secret SecurityLabelDisable SecurityLabelFileType SecurityLabelLevel SecurityLabelNested
  SecurityLabelType ShmSize StartWithPod StopSignal SubGIDMap SubUIDMap Sysctl Timezone Tmpfs UIDMap Ulimit Unmask`.split(/\s+/));

/** What [Container] asks for; lists in order, single values last-wins. */
interface Spec {
  image: Assignment | null;
  exec: string[];
  name: Assignment | null;
  single: Partial<Record<'entrypoint' | 'user' | 'workdir' | 'hostname' | 'network' | 'memory' | 'cpus' | 'pidsLimit' | 'userns', string>>;
  readOnly: boolean;
  stopTimeout: string;
  env: string[];
  envFiles: string[];
  volumes: string[];
  capAdd: string[];
  capDrop: string[];
  podmanArgs: string[];
  ports: string[];
}

type Report = (a: Assignment, severity: Diagnostic['severity'], message: string) => void;
type Handler = (a: Assignment, s: Spec, x: { dir: string; report: Report }) => void;

/** Shell-style words of a value (systemd's quoting and C escapes), or null after reporting bad syntax. */
function words(a: Assignment, report: Report): string[] | null {
  try {
    return splitWords(a.value, { unquote: true, cunescape: true });
  } catch (e) {
    report(a, 'error', `Invalid syntax in ${a.key}=${a.value} (${(e as { reason?: string }).reason ?? 'bad quoting'}). Refusing.`);
    return null;
  }
}

/** Quadlet resolves a relative path (not one starting with a specifier) against the unit file's directory. */
const hostPath = (p: string, dir: string) => (p.startsWith('/') || p.startsWith('%') ? p : posix.join(dir, p));

const single = (field: keyof Spec['single'], check?: (v: string) => string | null): Handler => (a, s, x) => {
  if (a.value === '') { delete s.single[field]; return; }
  const why = check?.(a.value);
  if (why) { x.report(a, 'error', `Invalid ${a.key}=${a.value}: ${why}. Refusing.`); return; }
  s.single[field] = a.value;
};

const list = (field: 'env' | 'envFiles' | 'volumes' | 'capAdd' | 'capDrop' | 'podmanArgs' | 'ports', each: (w: string, a: Assignment, x: { dir: string; report: Report }) => string | null = (w) => w): Handler => (a, s, x) => {
  if (a.value === '') { s[field] = []; return; }
  for (const w of words(a, x.report) ?? []) {
    const v = each(w, a, x);
    if (v !== null) s[field].push(v);
  }
};

const HANDLERS: Record<string, Handler> = {
  Image: (a, s) => { s.image = a.value === '' ? null : a; },
  Exec: (a, s, x) => { const w = words(a, x.report); if (w) s.exec = w; },
  ContainerName: (a, s) => { s.name = a.value === '' ? null : a; },
  Entrypoint: single('entrypoint'),
  User: single('user'),
  WorkingDir: single('workdir'),
  // With a %-specifier (HostName=%H) it is checked by keel run, once the specifier is expanded.
  HostName: single('hostname', (v) => (v.includes('%') || isHostname(v) ? null : HOSTNAME_RULE)),
  Network: single('network', (v) => (v === 'bridge' || v === 'none' || v === 'host' ? null : 'keel has the networks bridge, none and host (no named networks)')),
  Memory: single('memory', (v) => (/^\d+(\.\d+)?[bkmg]?b?$/i.test(v) ? null : 'use a size such as 64m or 1g')),
  CPUs: single('cpus', (v) => (/^\d+(\.\d+)?$/.test(v) && Number(v) > 0 ? null : 'use a positive number of CPUs such as 0.5')),
  PidsLimit: single('pidsLimit', (v) => (/^(-1|\d+)$/.test(v) ? null : 'use a number of processes (0 or -1: no limit)')),
  // keel run --userns: host, or remap (one range for all, docker's userns-remap); Quadlet's auto (a range per container) is taken as remap.
  UserNS: (a, s, x) => {
    const v = a.value === 'auto' ? 'remap' : a.value;
    if (a.value === 'auto') x.report(a, 'warning', 'UserNS=auto: keel maps every container to one range (as UserNS=remap), not a range each.');
    if (v !== '' && v !== 'host' && v !== 'remap') { x.report(a, 'error', `Invalid UserNS=${a.value}: use host or remap (or auto). Refusing.`); return; }
    if (v === '') delete s.single.userns;
    else s.single.userns = v;
  },
  StopTimeout: (a, s, x) => {
    if (a.value === '') { s.stopTimeout = '10'; return; }
    if (!/^\d+$/.test(a.value)) { x.report(a, 'error', `Invalid StopTimeout=${a.value}: use whole seconds. Refusing.`); return; }
    s.stopTimeout = a.value;
  },
  ReadOnly: (a, s, x) => {
    if (a.value === '') { s.readOnly = false; return; }
    try { s.readOnly = parseBoolean(a.value); } catch { x.report(a, 'error', `Invalid ReadOnly=${a.value}: not a boolean. Refusing.`); }
  },
  Environment: list('env', (w, a, x) => {
    const eq = w.indexOf('=');
    const name = w.slice(0, eq);
    if (eq <= 0 || (!isEnvName(name) && !name.includes('%'))) { x.report(a, 'error', `Invalid environment assignment ${JSON.stringify(w)} in Environment=${a.value}. Refusing.`); return null; }
    return w;
  }),
  EnvironmentFile: list('envFiles', (w, _a, x) => hostPath(w, x.dir)),
  Volume: list('volumes', (w, a, x) => {
    const parts = w.split(':');
    const fail = (why: string) => { x.report(a, 'error', `Invalid Volume=${a.value}: ${why}. Refusing.`); return null; };
    if (parts.length < 2 || parts.length > 3) return fail('use HOST-DIR:CONTAINER-DIR[:ro|rw] (keel has no anonymous volumes)');
    const [host, ctr, mode] = parts;
    if (mode !== undefined && mode !== 'ro' && mode !== 'rw') return fail(`option ${JSON.stringify(mode)} is not supported (use ro or rw)`);
    if (!host.startsWith('/') && !host.startsWith('.') && !host.startsWith('%')) return fail(`${JSON.stringify(host)} is not a path (keel has no named volumes)`);
    if (!ctr.startsWith('/') && !ctr.startsWith('%')) return fail(`container path ${JSON.stringify(ctr)} is not absolute`);
    return [hostPath(host, x.dir), ctr, ...(mode ? [mode] : [])].join(':');
  }),
  AddCapability: list('capAdd'),
  DropCapability: list('capDrop'),
  PodmanArgs: list('podmanArgs'),
  PublishPort: list('ports', (w, a, x) => {
    if (/^((\d{1,3}\.){3}\d{1,3}:)?\d{1,5}:\d{1,5}(\/(tcp|udp))?$/.test(w)) return w;
    x.report(a, 'error', `Invalid PublishPort=${a.value}: use [IP:]HOST-PORT:CONTAINER-PORT[/tcp|udp] (keel has no port ranges or random host ports). Refusing.`);
    return null;
  }),
};

/** One word of an ExecStart= line that parseExecLine gives back as `w` (quoted and escaped as needed). */
export function quoteExecWord(w: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w)) return w;
  let out = '"';
  for (const ch of w) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** A word passed to keel literally: `$` would otherwise be substituted when ExecStart= is spawned. */
const literal = (w: string) => w.replace(/\$/g, '$$$$');

/** The line the [Container] section starts on (0 without one): file-level diagnostics point there. */
function containerHeaderLine(text: string): number {
  return text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).findIndex((l) => l.trim() === '[Container]') + 1;
}

/** Renders assignments as unit-file text, one section header per run. */
function render(file: string, assignments: Assignment[]): string {
  let out = `# Generated by keel from ${file}\n`;
  let section: string | null = null;
  for (const a of assignments) {
    if (a.section !== section) { out += `${section === null ? '' : '\n'}[${a.section}]\n`; section = a.section; }
    out += `${a.key}=${a.value}\n`;
  }
  return out;
}

/**
 * Translates the text of `file` (NAME.container) into the service NAME.service: `keel run --rm
 * --name systemd-%N ... IMAGE [Exec...]` as ExecStart=, with a leftover container removed before
 * (ExecStartPre=-keel rm -f) and after (ExecStopPost=-keel rm -f), `keel stop -t 10` as ExecStop=,
 * Type=exec, KillMode=mixed, SuccessExitStatus=143 (a container that ends on SIGTERM stopped
 * cleanly) and Wants=/After=network-online.target, each overridable by the file's own sections.
 * Diagnostics name `file` and the line; errors refuse the unit.
 */
export function containerToService(file: string, text: string, opts: QuadletOptions = {}): ContainerService {
  const parsed = parseUnitText(text, file);
  const diagnostics: Diagnostic[] = [...parsed.diagnostics];
  const header = containerHeaderLine(text);
  const report: Report = (a, severity, message) => diagnostics.push({ file, line: a.line, severity, message });
  const s: Spec = { image: null, exec: [], name: null, single: {}, readOnly: false, stopTimeout: '10', env: [], envFiles: [], volumes: [], capAdd: [], capDrop: [], podmanArgs: [], ports: [] };
  const x = { dir: posix.dirname(file), report };
  const passthrough: Assignment[] = [];
  for (const a of parsed.assignments) {
    if (a.section !== 'Container') {
      if (a.section === 'Service' && a.key === 'ExecStart') {
        report(a, 'error', 'ExecStart= cannot be set for a .container unit: the container is its main process (use Exec= in [Container]). Refusing.');
      } else passthrough.push(a);
      continue;
    }
    if (a.key.startsWith('X-')) continue;
    const handler = HANDLERS[a.key];
    if (handler) handler(a, s, x);
    else if (QUADLET_UNSUPPORTED.has(a.key)) report(a, 'warning', `${a.key}= is a Quadlet key keel does not support, ignoring.`);
    else report(a, 'warning', `Unknown key name '${a.key}' in section 'Container', ignoring.`);
  }
  if (!s.image) {
    diagnostics.push({ file, line: header, severity: 'error', message: `${file} has no Image= in [Container]: a .container unit needs the image to run. Refusing.` });
  }
  const publish = parsed.assignments.find((a) => a.section === 'Container' && a.key === 'PublishPort' && a.value !== '');
  if (publish && s.ports.length && s.single.network && s.single.network !== 'bridge') {
    report(publish, 'error', `PublishPort=${publish.value} needs Network=bridge (the default), not Network=${s.single.network}. Refusing.`);
  }
  const refused = diagnostics.some((d) => d.severity === 'error');
  const at = (line: number) => (section: string, key: string, value: string): Assignment => ({ section, key, value, file, line });
  const gen = at(header);
  const bySection = (name: string) => passthrough.filter((a) => a.section === name);
  const others = passthrough.filter((a) => !['Unit', 'Service', 'Install'].includes(a.section));
  let service: Assignment[];
  let unit: Assignment[] = [];
  if (refused) {
    // No ExecStart=, and not oneshot (which would "start" without one): the start fails.
    service = [gen('Service', 'Type', 'exec')];
  } else {
    const bin = quoteExecWord(opts.keelBin ?? DEFAULT_KEEL_BIN);
    const root = opts.containersRoot ? ['--root', opts.containersRoot] : [];
    // As Quadlet: a template's (or an instance file's) container is systemd-PREFIX_INSTANCE, as '@' is no name character.
    const name = s.name?.value ?? (posix.basename(file).includes('@') ? 'systemd-%p_%i' : 'systemd-%N');
    const nameAt = at(s.name?.line ?? header);
    const keel = (args: string[], raw: string[] = []) => [bin, ...args.map((w) => quoteExecWord(literal(w))), ...raw.map(quoteExecWord)].join(' ');
    const o = s.single;
    // A value starting with '-' (PidsLimit=-1) must be joined to its option, or it reads as one.
    const opt = (flag: string, v: string | undefined) => (v === undefined ? [] : v.startsWith('-') ? [`${flag}=${v}`] : [flag, v]);
    const runArgs = [
      'run', ...root, '--rm', '--name', name,
      ...s.env.flatMap((e) => ['-e', e]), ...s.envFiles.flatMap((f) => ['--env-file', f]), ...s.volumes.flatMap((v) => ['-v', v]),
      ...opt('-w', o.workdir), ...opt('--user', o.user), ...opt('--hostname', o.hostname), ...opt('--entrypoint', o.entrypoint),
      ...opt('--network', o.network), ...s.ports.flatMap((p) => ['-p', p]), ...(s.readOnly ? ['--read-only'] : []),
      ...s.capAdd.flatMap((c) => ['--cap-add', c]), ...s.capDrop.flatMap((c) => ['--cap-drop', c]),
      ...opt('--memory', o.memory), ...opt('--cpus', o.cpus), ...opt('--pids-limit', o.pidsLimit), ...opt('--userns', o.userns),
    ];
    const image = s.image!;
    const run = `${keel(runArgs, s.podmanArgs)} ${quoteExecWord(literal(image.value))}${s.exec.map((w) => ` ${quoteExecWord(w)}`).join('')}`;
    unit = [gen('Unit', 'Wants', 'network-online.target'), gen('Unit', 'After', 'network-online.target')];
    service = [
      gen('Service', 'Type', 'exec'), gen('Service', 'KillMode', 'mixed'), gen('Service', 'SuccessExitStatus', '143'),
      nameAt('Service', 'ExecStartPre', `-${keel(['rm', ...root, '-f', name])}`),
      at(image.line)('Service', 'ExecStart', run),
      nameAt('Service', 'ExecStop', keel(['stop', ...root, '-t', s.stopTimeout, name])),
      nameAt('Service', 'ExecStopPost', `-${keel(['rm', ...root, '-f', name])}`),
    ];
  }
  const assignments = [
    ...unit, ...bySection('Unit'), ...service, ...(refused ? [] : bySection('Service')), ...bySection('Install'), ...others,
  ];
  return { unitText: render(file, assignments), assignments, diagnostics, refused };
}

/** The options the loader uses: $KEEL_BIN (default /usr/bin/keel) and $KEEL_CONTAINERS_ROOT, read at load time. */
export function quadletOptionsFromEnv(env: Record<string, string | undefined> = process.env): QuadletOptions {
  return { keelBin: env.KEEL_BIN || DEFAULT_KEEL_BIN, ...(env.KEEL_CONTAINERS_ROOT ? { containersRoot: env.KEEL_CONTAINERS_ROOT } : {}) };
}

/**
 * The loader's parse of a unit file (load.ts): parseUnitText, except that a .container fragment
 * is read as the service it generates (options from the environment, see quadletOptionsFromEnv).
 */
export function parseUnitFile(text: string, file: string): { assignments: Assignment[]; diagnostics: Diagnostic[] } {
  if (!file.endsWith('.container')) return parseUnitText(text, file);
  const { assignments, diagnostics } = containerToService(file, text, quadletOptionsFromEnv());
  return { assignments, diagnostics };
}

/** The service a .container name stands for (`web.container` → `web.service`, `web@.container` → `web@.service`), or null. */
export function containerServiceName(name: string): string | null {
  return splitUnitName(name)?.suffix === 'container' ? `${name.slice(0, -'.container'.length)}.service` : null;
}

/** systemd's alias rule for a link NAME → target: a template only aliases a template, an instance an instance or template. */
function aliasFits(name: string, target: string): boolean {
  const s = splitUnitName(name);
  const d = splitUnitName(target);
  if (!s || !d) return false;
  if (s.template) return d.template;
  if (s.instance !== null) return d.instance !== null || d.template;
  return !d.template && d.instance === null;
}

/**
 * The index side of the loader hook, run by buildIndex after each search directory: each
 * NAME.container of `dir` is indexed as NAME.service with the .container as its fragment, unless
 * a NAME.service (or its mask) of this or a higher-priority directory is there already; the
 * .container name itself is no unit. A link NAME.service → X.container (what `keel enable` makes
 * for Alias=, or a container file linked in from elsewhere) is indexed too.
 */
export function indexContainerUnits(idx: UnitIndex, dir: string, entries: string[]): void {
  for (const entry of entries) {
    const service = containerServiceName(entry);
    if (service) {
      const e = idx.ids.get(entry);
      if (!e) continue;
      idx.ids.delete(entry);
      if (idx.ids.has(service)) continue;
      if (e.kind !== 'alias') idx.ids.set(service, e);
      else idx.ids.set(service, { ...e, target: containerServiceName(e.target) ?? e.target });
    } else if (!idx.ids.has(entry) && splitUnitName(entry)?.suffix === 'service') {
      const p = posix.join(dir, entry);
      if (!idx.fs.lstat(p)?.isSymbolicLink) continue;
      const link = idx.fs.readlink(p);
      const target = containerServiceName(posix.basename(link));
      const finalPath = posix.resolve(dir, link);
      if (target === entry) idx.ids.set(entry, { kind: 'file', path: finalPath });
      else if (target && aliasFits(entry, target)) idx.ids.set(entry, { kind: 'alias', target, finalPath });
    }
  }
}
