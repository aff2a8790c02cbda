// keel analyze: `verify FILE...` checks unit files offline as systemd-analyze verify does
// (FILE:LINE: message on stderr; exit 0 with only warnings, 1 with any error); `blame`,
// `critical-chain [TARGET]` and `time` show the boot timeline from PID 1.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { hostname, release } from 'node:os';
import type { Verb } from './main.js';
import { realUnitFs } from '../units/real-fs.js';
import { verifyUnitFile, type VerifyHost } from '../units/verify.js';
import { quadletOptionsFromEnv } from '../init/config.js';
import { request } from './control-client.js';
import { blame, criticalChain, startupTime, type TimelineEntry } from './analyze-timeline.js';

/** The search path of this host after the file's own directory (systemd's, with Debian's /lib). */
const HOST_SEARCH_PATHS = [
  '/etc/systemd/system',
  '/run/systemd/system',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
];
const ARCH: Record<string, string> = {
  x64: 'x86-64',
  ia32: 'x86',
  arm64: 'arm64',
  arm: 'arm',
  riscv64: 'riscv64',
  ppc64: 'ppc64-le',
  s390x: 's390x',
};
const SUBCOMMANDS = ['verify', 'blame', 'critical-chain', 'time'];

/** Why a program cannot be run, in strerror words, or null when it can. */
function access(path: string): string | null {
  try {
    if (statSync(path).isDirectory()) return 'Is a directory';
    accessSync(path, constants.X_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? 'No such file or directory'
      : code === 'EACCES'
        ? 'Permission denied'
        : code === 'ENOTDIR'
          ? 'Not a directory'
          : String(code);
  }
}

/** Best-effort host facts for specifiers: a missing file leaves the value empty. */
function readTrimmed(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

export const verb: Verb = {
  summary: 'Check unit files offline (verify), or show the boot timeline (blame, critical-chain, time).',
  usage: `keel analyze verify FILE...   (subcommands: ${SUBCOMMANDS.join(', ')})`,
  options: {},
  async run(_values, positionals) {
    const [sub, ...files] = positionals;
    if (sub === 'blame' || sub === 'critical-chain' || sub === 'time') {
      const t = (await request('timeline')) as TimelineEntry[];
      const target = files[0] ?? 'multi-user.target';
      process.stdout.write(
        sub === 'blame' ? blame(t) : sub === 'time' ? startupTime(t, target) : criticalChain(t, target),
      );
      return 0;
    }
    if (sub !== 'verify') {
      process.stderr.write(
        `keel analyze: ${sub ? `unknown subcommand "${sub}"` : 'name a subcommand'}; ` +
          `available: ${SUBCOMMANDS.join(', ')}\nusage: ${verb.usage}\n`,
      );
      return 2;
    }
    if (files.length === 0) {
      process.stderr.write(`keel analyze verify: name at least one unit file\nusage: ${verb.usage}\n`);
      return 2;
    }
    const host: VerifyHost = {
      fs: realUnitFs(),
      searchPaths: HOST_SEARCH_PATHS,
      access,
      specifiers: {
        hostname: hostname(),
        machineId: readTrimmed('/etc/machine-id'),
        bootId: readTrimmed('/proc/sys/kernel/random/boot_id').replace(/-/g, ''),
        runtimeDir: '/run',
        kernelRelease: release(),
        architecture: ARCH[process.arch] ?? process.arch,
      },
      // A .container is verified as the service the init would generate from the same environment.
      quadlet: quadletOptionsFromEnv(process.env),
    };
    let errors = 0;
    for (const file of files) {
      const r = verifyUnitFile(file, host);
      for (const line of r.lines) process.stderr.write(`${line}\n`);
      errors += r.errors;
    }
    return errors > 0 ? 1 : 0;
  },
};
