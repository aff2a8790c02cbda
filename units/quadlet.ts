// Podman Quadlet-style `.container` units (podman-systemd.unit(5)): NAME.container in a unit
// directory is the service NAME.service, whose main process is `keel run` in the foreground (it
// waits for the container and exits with its status). [Unit], [Service] and [Install] pass
// through; [Container] becomes the service's Exec*= lines. This file is the translation
// (containerToService); the loader reaches it through quadlet-load.ts (indexContainerUnits for
// names, parseUnitFile for contents).
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
import { parseUnitText } from './parse.js';
import { splitWords } from './words.js';
import { parseBoolean } from './values.js';
import {
  parseCpus,
  parseEnvAssignment,
  parseHostname,
  parseMemory,
  parseNetwork,
  parsePidsLimit,
  parsePublish,
  parseUsernsMode,
  parseVolume,
} from '../containers/options.js';

/** Where the keel CLI is in the image. */
export const DEFAULT_KEEL_BIN = '/usr/bin/keel';

/** How the generated lines call the keel CLI. */
export interface QuadletOptions {
  /** The CLI (absolute path; default /usr/bin/keel). The init takes it from $KEEL_BIN (init/config.ts). */
  keelBin?: string;
  /** `--root` for run, stop and rm (none: the CLI's default store). The init takes it from $KEEL_CONTAINERS_ROOT. */
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
const QUADLET_UNSUPPORTED = new Set(
  (
    `AddDevice AddHost Annotation AutoUpdate CgroupsMode ContainersConfModule DNS DNSOption
  DNSSearch EnvironmentHost ExposeHostPort GIDMap GlobalArgs Group ` +
    `GroupAdd HealthCmd HealthInterval HealthLogDestination
  HealthMaxLogCount HealthMaxLogSize HealthOnFailure HealthRetries ` +
    `HealthStartPeriod HealthStartupCmd HealthStartupInterval
  HealthStartupRetries HealthStartupSuccess HealthStartupTimeout HealthTimeout IP IP6 Label LogDriver LogOpt Mask Mount
  NetworkAlias NoNewPrivileges Notify Pod Pull ReadOnlyTmpfs ReloadCmd ReloadSignal Retry RetryDelay Rootfs RunInit
  SeccompProfile Secret SecurityLabelDisable SecurityLabelFileType SecurityLabelLevel SecurityLabelNested
  SecurityLabelType ShmSize StartWithPod StopSignal SubGIDMap ` +
    'SubUIDMap Sysctl Timezone Tmpfs UIDMap Ulimit Unmask'
  ).split(/\s+/),
);

/** What [Container] asks for; lists in order, single values last-wins. */
interface Spec {
  image: Assignment | null;
  exec: string[];
  name: Assignment | null;
  single: Partial<
    Record<
      'entrypoint' | 'user' | 'workdir' | 'hostname' | 'network' | 'memory' | 'cpus' | 'pidsLimit' | 'userns',
      string
    >
  >;
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
    report(
      a,
      'error',
      `Invalid syntax in ${a.key}=${a.value} (${(e as { reason?: string }).reason ?? 'bad quoting'}). Refusing.`,
    );
    return null;
  }
}

/** Quadlet resolves a relative path (not one starting with a specifier) against the unit file's directory. */
const hostPath = (p: string, dir: string) => (p.startsWith('/') || p.startsWith('%') ? p : posix.join(dir, p));

/** The reason keel run's own parser (containers/options.ts) refuses `v`, or null when it takes it. */
function refusal(parse: (v: string) => unknown, v: string): string | null {
  try {
    parse(v);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** keel run's parser as a check; a value with a %-specifier is left to keel run, once the specifier is expanded. */
const asRun = (parse: (v: string) => unknown) => (v: string) => (v.includes('%') ? null : refusal(parse, v));

const single =
  (field: keyof Spec['single'], check?: (v: string) => string | null): Handler =>
  (a, s, x) => {
    if (a.value === '') {
      delete s.single[field];
      return;
    }
    const why = check?.(a.value);
    if (why) {
      x.report(a, 'error', `Invalid ${a.key}=${a.value}: ${why}. Refusing.`);
      return;
    }
    s.single[field] = a.value;
  };

const list =
  (
    field: 'env' | 'envFiles' | 'volumes' | 'capAdd' | 'capDrop' | 'podmanArgs' | 'ports',
    each: (w: string, a: Assignment, x: { dir: string; report: Report }) => string | null = (w) => w,
  ): Handler =>
  (a, s, x) => {
    if (a.value === '') {
      s[field] = [];
      return;
    }
    for (const w of words(a, x.report) ?? []) {
      const v = each(w, a, x);
      if (v !== null) s[field].push(v);
    }
  };

const HANDLERS: Record<string, Handler> = {
  Image: (a, s) => {
    s.image = a.value === '' ? null : a;
  },
  Exec: (a, s, x) => {
    const w = words(a, x.report);
    if (w) s.exec = w;
  },
  ContainerName: (a, s) => {
    s.name = a.value === '' ? null : a;
  },
  Entrypoint: single('entrypoint'),
  User: single('user'),
  WorkingDir: single('workdir'),
  // Values go through keel run's own parsers (containers/options.ts): the unit and the command line agree.
  HostName: single('hostname', asRun(parseHostname)),
  Network: single(
    'network',
    (v) => refusal(parseNetwork, v) && 'keel has the networks bridge, none and host (no named networks)',
  ),
  Memory: single('memory', asRun(parseMemory)),
  CPUs: single('cpus', asRun(parseCpus)),
  PidsLimit: single('pidsLimit', asRun(parsePidsLimit)),
  // keel run --userns: host, or remap (one range for all, docker's userns-remap); Quadlet's auto (a range per
  // container) is taken as remap.
  UserNS: (a, s, x) => {
    const v = a.value === 'auto' ? 'remap' : a.value;
    if (a.value === 'auto')
      x.report(
        a,
        'warning',
        'UserNS=auto: keel maps every container to one range (as UserNS=remap), not a range each.',
      );
    const why = v === '' ? null : refusal(parseUsernsMode, v);
    if (why) {
      x.report(a, 'error', `Invalid UserNS=${a.value}: ${why}; or auto. Refusing.`);
      return;
    }
    if (v === '') delete s.single.userns;
    else s.single.userns = v;
  },
  StopTimeout: (a, s, x) => {
    if (a.value === '') {
      s.stopTimeout = '10';
      return;
    }
    if (!/^\d+$/.test(a.value)) {
      x.report(a, 'error', `Invalid StopTimeout=${a.value}: use whole seconds. Refusing.`);
      return;
    }
    s.stopTimeout = a.value;
  },
  ReadOnly: (a, s, x) => {
    if (a.value === '') {
      s.readOnly = false;
      return;
    }
    try {
      s.readOnly = parseBoolean(a.value);
    } catch {
      x.report(a, 'error', `Invalid ReadOnly=${a.value}: not a boolean. Refusing.`);
    }
  },
  Environment: list('env', (w, a, x) => {
    // keel run -e's rule for the name; a bare NAME (keel run: taken from its own environment) is no assignment here.
    if (!w.includes('=') || refusal((kv) => parseEnvAssignment(kv, 'Environment='), w)) {
      x.report(a, 'error', `Invalid environment assignment ${JSON.stringify(w)} in Environment=${a.value}. Refusing.`);
      return null;
    }
    return w;
  }),
  EnvironmentFile: list('envFiles', (w, _a, x) => hostPath(w, x.dir)),
  Volume: list('volumes', (w, a, x) => {
    const parts = w.split(':');
    const fail = (why: string) => {
      x.report(a, 'error', `Invalid Volume=${a.value}: ${why}. Refusing.`);
      return null;
    };
    if (parts.length < 2) return fail('use HOST-DIR:CONTAINER-DIR[:ro|rw] (keel has no anonymous volumes)');
    const why = refusal(parseVolume, w);
    if (why) return fail(why);
    const [host, ctr, mode] = parts;
    if (!host.startsWith('/') && !host.startsWith('.') && !host.startsWith('%'))
      return fail(`${JSON.stringify(host)} is not a path (keel has no named volumes)`);
    if (!ctr.startsWith('/') && !ctr.startsWith('%'))
      return fail(`container path ${JSON.stringify(ctr)} is not absolute`);
    return [hostPath(host, x.dir), ctr, ...(mode ? [mode] : [])].join(':');
  }),
  AddCapability: list('capAdd'),
  DropCapability: list('capDrop'),
  PodmanArgs: list('podmanArgs'),
  PublishPort: list('ports', (w, a, x) => {
    const why = asRun(parsePublish)(w);
    if (!why) return w;
    x.report(a, 'error', `Invalid PublishPort=${a.value}: ${why}. Refusing.`);
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
  return (
    text
      .replace(/^\uFEFF/, '')
      .split(/\r\n|\r|\n/)
      .findIndex((l) => l.trim() === '[Container]') + 1
  );
}

/** Renders assignments as unit-file text, one section header per run. */
function render(file: string, assignments: Assignment[]): string {
  let out = `# Generated by keel from ${file}\n`;
  let section: string | null = null;
  for (const a of assignments) {
    if (a.section !== section) {
      out += `${section === null ? '' : '\n'}[${a.section}]\n`;
      section = a.section;
    }
    out += `${a.key}=${a.value}\n`;
  }
  return out;
}

/**
 * Translates the text of `file` (NAME.container) into the service NAME.service: `keel run --rm
 * --sigterm-on-stop --name systemd-%N ... IMAGE [Exec...]` as ExecStart=, with a leftover container removed before
 * (ExecStartPre=-keel rm -f) and after (ExecStopPost=-keel rm -f), `keel stop -t 10` as ExecStop=,
 * Type=exec, KillMode=mixed, SuccessExitStatus=143 (a container that ends on SIGTERM stopped
 * cleanly; a stop by keel stop ends keel run itself by SIGTERM, clean whatever the container's status,
 * and keel stop returns only once keel run has ended, so the manager never signals it half-way) and
 * Wants=/After=network-online.target, each overridable by the file's own sections.
 * Diagnostics name `file` and the line; errors refuse the unit.
 */
export function containerToService(file: string, text: string, opts: QuadletOptions = {}): ContainerService {
  const parsed = parseUnitText(text, file);
  const diagnostics: Diagnostic[] = [...parsed.diagnostics];
  const header = containerHeaderLine(text);
  const report: Report = (a, severity, message) => diagnostics.push({ file, line: a.line, severity, message });
  const s: Spec = {
    image: null,
    exec: [],
    name: null,
    single: {},
    readOnly: false,
    stopTimeout: '10',
    env: [],
    envFiles: [],
    volumes: [],
    capAdd: [],
    capDrop: [],
    podmanArgs: [],
    ports: [],
  };
  const x = { dir: posix.dirname(file), report };
  const passthrough: Assignment[] = [];
  for (const a of parsed.assignments) {
    if (a.section !== 'Container') {
      if (a.section === 'Service' && a.key === 'ExecStart') {
        report(
          a,
          'error',
          'ExecStart= cannot be set for a .container unit: the container is its ' +
            'main process (use Exec= in [Container]). Refusing.',
        );
      } else passthrough.push(a);
      continue;
    }
    if (a.key.startsWith('X-')) continue;
    const handler = HANDLERS[a.key];
    if (handler) handler(a, s, x);
    else if (QUADLET_UNSUPPORTED.has(a.key))
      report(a, 'warning', `${a.key}= is a Quadlet key keel does not support, ignoring.`);
    else report(a, 'warning', `Unknown key name '${a.key}' in section 'Container', ignoring.`);
  }
  if (!s.image) {
    diagnostics.push({
      file,
      line: header,
      severity: 'error',
      message: `${file} has no Image= in [Container]: a .container unit needs the image to run. Refusing.`,
    });
  }
  const publish = parsed.assignments.find(
    (a) => a.section === 'Container' && a.key === 'PublishPort' && a.value !== '',
  );
  if (publish && s.ports.length && s.single.network && s.single.network !== 'bridge') {
    report(
      publish,
      'error',
      `PublishPort=${publish.value} needs Network=bridge (the default), not Network=${s.single.network}. Refusing.`,
    );
  }
  const refused = diagnostics.some((d) => d.severity === 'error');
  const at =
    (line: number) =>
    (section: string, key: string, value: string): Assignment => ({ section, key, value, file, line });
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
    // As Quadlet: a template's (or an instance file's) container is systemd-PREFIX_INSTANCE, as '@' is no name
    // character.
    const name = s.name?.value ?? (posix.basename(file).includes('@') ? 'systemd-%p_%i' : 'systemd-%N');
    const nameAt = at(s.name?.line ?? header);
    const keel = (args: string[], raw: string[] = []) =>
      [bin, ...args.map((w) => quoteExecWord(literal(w))), ...raw.map(quoteExecWord)].join(' ');
    const o = s.single;
    // A value starting with '-' (PidsLimit=-1) must be joined to its option, or it reads as one.
    const opt = (flag: string, v: string | undefined) =>
      v === undefined ? [] : v.startsWith('-') ? [`${flag}=${v}`] : [flag, v];
    const runArgs = [
      'run',
      ...root,
      '--rm',
      '--sigterm-on-stop',
      '--name',
      name,
      ...s.env.flatMap((e) => ['-e', e]),
      ...s.envFiles.flatMap((f) => ['--env-file', f]),
      ...s.volumes.flatMap((v) => ['-v', v]),
      ...opt('-w', o.workdir),
      ...opt('--user', o.user),
      ...opt('--hostname', o.hostname),
      ...opt('--entrypoint', o.entrypoint),
      ...opt('--network', o.network),
      ...s.ports.flatMap((p) => ['-p', p]),
      ...(s.readOnly ? ['--read-only'] : []),
      ...s.capAdd.flatMap((c) => ['--cap-add', c]),
      ...s.capDrop.flatMap((c) => ['--cap-drop', c]),
      ...opt('--memory', o.memory),
      ...opt('--cpus', o.cpus),
      ...opt('--pids-limit', o.pidsLimit),
      ...opt('--userns', o.userns),
    ];
    const image = s.image!;
    const run =
      `${keel(runArgs, s.podmanArgs)} ${quoteExecWord(literal(image.value))}` +
      `${s.exec.map((w) => ` ${quoteExecWord(w)}`).join('')}`;
    unit = [gen('Unit', 'Wants', 'network-online.target'), gen('Unit', 'After', 'network-online.target')];
    service = [
      gen('Service', 'Type', 'exec'),
      gen('Service', 'KillMode', 'mixed'),
      gen('Service', 'SuccessExitStatus', '143'),
      nameAt('Service', 'ExecStartPre', `-${keel(['rm', ...root, '-f', name])}`),
      at(image.line)('Service', 'ExecStart', run),
      nameAt('Service', 'ExecStop', keel(['stop', ...root, '-t', s.stopTimeout, name])),
      nameAt('Service', 'ExecStopPost', `-${keel(['rm', ...root, '-f', name])}`),
    ];
  }
  const assignments = [
    ...unit,
    ...bySection('Unit'),
    ...service,
    ...(refused ? [] : bySection('Service')),
    ...bySection('Install'),
    ...others,
  ];
  return { unitText: render(file, assignments), assignments, diagnostics, refused };
}
