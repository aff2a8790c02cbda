// Real containers (as root): a busybox root filesystem in a temp dir, run through runContainer()
// and the native helper's clone()-based spawn; plus the pure parts (capabilities, spawn options).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ALL_CAPABILITIES_MASK,
  DEFAULT_CAPABILITIES,
  capabilityMask,
  capabilityNames,
  capabilityNumber,
  resolveCapabilities,
} from '../../containers/capabilities.js';
import { isContainerError } from '../../containers/errors.js';
import {
  MASKED_PATHS,
  cgroup2Mounts,
  containerSpawnOptions,
  hostFacts,
  limitFiles,
  parseTmpfs,
  parseVolume,
  runContainer,
  type ContainerSpec,
  type HostFacts,
} from '../../containers/runtime.js';
import { native } from '../../native/native.js';
import { ProcessTable } from '../../native/process-table.js';
import { expectNativeError } from '../native/helpers.js';
import { describeAsRoot, itAsRoot } from '../needs.js';

const DOCKER_DEFAULT_MASK = 0xa80425fbn;
const hex = (m: bigint) => m.toString(16).padStart(16, '0');

// A static probe for syscalls busybox cannot make: prints NAME=ok or NAME=ERRNO.
const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    long r = -1;
    errno = EINVAL;
    if (!strcmp(argv[i], "keyctl")) r = syscall(SYS_keyctl, 0, -3, 0);
    if (!strcmp(argv[i], "unshare_user")) r = syscall(SYS_unshare, CLONE_NEWUSER);
    if (!strcmp(argv[i], "clone_user")) {
      r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
      if (r == 0) _exit(0);
      if (r > 0) waitpid(r, 0, 0);
    }
    printf("%s=%s\n", argv[i], r < 0 ? strerrorname_np(errno) : "ok");
  }
  return 0;
}
`;

let tmp: string;
let rootfs: string;
let cgroupParent: string;
let seq = 0;

/** Lines of the host's mountinfo that mention our temp dir: there must never be any. */
function hostMountsUnderTmp(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(tmp));
}

function spec(over: Partial<ContainerSpec> & { argv: string[] }): ContainerSpec {
  return { id: `t${process.pid}-${++seq}`, rootfs: { bind: rootfs }, ...over };
}

/** Runs a container to its end with stdout and stderr in a file. */
async function run(
  over: Partial<ContainerSpec> & { argv: string[] },
): Promise<{ code: number | null; signal: string | null; out: string }> {
  const outFile = join(tmp, `out-${++seq}`);
  const fd = openSync(outFile, 'w');
  try {
    const c = runContainer(spec({ stdout: fd, stderr: fd, ...over }), { cgroupParent });
    const exit = await c.wait();
    return { ...exit, out: readFileSync(outFile, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

const sh = (script: string) => ['sh', '-c', script];

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) assert.fail('timed out');
  }
}

describe('containers/runtime', function () {
  this.timeout(20000);

  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'keel-ct-')));
    rootfs = join(tmp, 'rootfs');
    for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp', 'mnt', 'root', 'etc'])
      mkdirSync(join(rootfs, d), { recursive: true });
    copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
    chmodSync(join(rootfs, 'bin/busybox'), 0o755);
    for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
      if (applet !== 'busybox') symlinkSync('busybox', join(rootfs, 'bin', applet));
    }
    const [cg] = cgroup2Mounts();
    assert.ok(cg, 'the tests need a cgroup2 hierarchy');
    cgroupParent = join(cg, `keel-ct-test-${process.pid}`);
  });

  after(() => {
    assert.deepEqual(hostMountsUnderTmp(), []);
    rmSync(tmp, { recursive: true, force: true });
    try {
      rmdirSync(cgroupParent);
    } catch {
      /* never created, or busy */
    }
  });

  describeAsRoot('isolation', () => {
    it("runs the entrypoint as PID 1 and shows only the container's processes", async () => {
      const r = await run({ argv: sh('echo $$; tr "\\0" " " < /proc/1/cmdline; echo; ls /proc | grep -E "^[0-9]+$"') });
      assert.equal(r.code, 0, r.out);
      const [pid, cmdline, ...pids] = r.out.trim().split('\n');
      assert.equal(pid, '1');
      assert.match(cmdline, /^sh -c echo \$\$; /);
      assert.ok(pids.includes('1'));
      assert.ok(
        pids.every((p) => Number(p) < 10),
        `pids seen inside: ${pids.join(' ')}`,
      );
    });

    it('keeps its mounts to itself, and SIGKILL ends it with the signal reported', async () => {
      const c = runContainer(spec({ argv: ['sleep', '30'] }), { cgroupParent });
      let exit;
      try {
        const inside = readFileSync(`/proc/${c.pid}/mountinfo`, 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.split(' ')[4]);
        const masked = ['/proc/kcore', '/proc/keys', '/sys/firmware'].filter((p) => existsSync(p));
        for (const m of [
          '/',
          '/proc',
          '/dev',
          '/dev/pts',
          '/dev/shm',
          '/dev/mqueue',
          '/sys',
          '/sys/fs/cgroup',
          '/proc/sys',
          ...masked,
        ]) {
          assert.ok(inside.includes(m), `${m} is mounted inside`);
        }
        // Only its own mounts: none of the host's other mounts survived pivot_root.
        assert.deepEqual(
          inside.filter((m) => !/^\/($|proc|dev|sys)/.test(m)),
          [],
        );
        assert.deepEqual(hostMountsUnderTmp(), []);
        // As PID 1 of its namespace it ignores SIGTERM it has no handler for; SIGKILL from outside always works.
        assert.equal(
          readFileSync(`/proc/${c.pid}/status`, 'utf8')
            .match(/^NSpid:\s*(.*)$/m)?.[1]
            .split(/\s+/)
            .pop(),
          '1',
        );
      } finally {
        c.kill('SIGKILL');
        exit = await c.wait();
      }
      assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
      assert.deepEqual(hostMountsUnderTmp(), []);
    });

    it("gives it its own hostname and leaves the host's alone", async () => {
      const host = hostname();
      const r = await run({ argv: sh('hostname; cat /proc/sys/kernel/hostname; echo $HOSTNAME'), hostname: 'web-1' });
      assert.deepEqual([r.code, r.out], [0, 'web-1\nweb-1\nweb-1\n']);
      assert.equal(hostname(), host);
      const d = await run({ argv: ['hostname'], id: 'abcdefghijklmnopqrstuvwxyz' });
      assert.equal(d.out, 'abcdefghijkl\n', 'default: the first 12 characters of the id');
    });

    it("network none: a namespace with only lo, up; host: the host's interfaces; netnsPath: joins one", async () => {
      const none = await run({ argv: sh('ls /sys/class/net; cat /sys/class/net/lo/flags') });
      assert.deepEqual([none.code, none.out], [0, 'lo\n0x9\n']);
      const host = await run({ argv: sh('ls /sys/class/net'), network: 'host' });
      assert.deepEqual(host.out.trim().split('\n').sort(), readdirSync('/sys/class/net').sort());
      const first = runContainer(spec({ argv: ['sleep', '30'] }), { cgroupParent });
      try {
        const joined = await run({
          argv: sh('readlink /proc/self/ns/net'),
          network: { netnsPath: `/proc/${first.pid}/ns/net` },
        });
        assert.equal(joined.out.trim(), readlinkSync(`/proc/${first.pid}/ns/net`));
        assert.notEqual(joined.out.trim(), readlinkSync('/proc/self/ns/net'));
      } finally {
        first.kill();
        await first.wait();
      }
    });

    it('closes every fd but 0-2', async () => {
      const extra = openSync('/dev/null', 'r');
      try {
        // "; true": a lone command would be exec'd by sh in its place, and ls would list its own dir fd.
        const r = await run({ argv: sh('ls /proc/$$/fd; true') });
        assert.deepEqual([r.code, r.out], [0, '0\n1\n2\n']);
      } finally {
        closeSync(extra);
      }
    });

    it('puts it into its cgroup, seen as / through its cgroup namespace', async () => {
      const fd = openSync(join(tmp, 'cg'), 'w');
      const c = runContainer(spec({ argv: sh('cat /proc/self/cgroup | grep "^0::"; sleep 30'), stdout: fd }), {
        cgroupParent,
      });
      closeSync(fd);
      try {
        assert.ok(c.cgroup?.startsWith(cgroupParent));
        assert.ok(readFileSync(join(c.cgroup!, 'cgroup.procs'), 'utf8').split('\n').includes(String(c.pid)));
        assert.match(
          readFileSync(`/proc/${c.pid}/cgroup`, 'utf8'),
          new RegExp(`^0::/.*keel-ct-test-${process.pid}/${c.id}$`, 'm'),
        );
        await until(() => readFileSync(join(tmp, 'cg'), 'utf8') !== '');
        assert.equal(readFileSync(join(tmp, 'cg'), 'utf8'), '0::/\n');
      } finally {
        c.kill();
        await c.wait();
      }
      assert.ok(!existsSync(c.cgroup!), 'the cgroup it created is removed after the exit');
    });
  });

  describeAsRoot('security', () => {
    before(() => {
      // The keyctl and user-namespace checks need a static probe: a missing gcc is a broken setup, not a skip.
      writeFileSync(join(tmp, 'probe.c'), PROBE_C);
      try {
        const args = ['-static', '-O1', '-o', join(rootfs, 'bin/probe'), join(tmp, 'probe.c')];
        execFileSync('gcc', args, { stdio: 'pipe' });
      } catch (e) {
        throw new Error(`needs gcc (make deps installs it): cannot build the static probe: ${(e as Error).message}`, {
          cause: e,
        });
      }
    });

    it("has Docker's default capabilities, no_new_privs and a seccomp filter", async () => {
      const r = await run({
        argv: ['grep', '-E', '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):', '/proc/self/status'],
      });
      assert.equal(
        r.out,
        `CapInh:\t${hex(0n)}\nCapPrm:\t${hex(DOCKER_DEFAULT_MASK)}\n` +
          `CapEff:\t${hex(DOCKER_DEFAULT_MASK)}\n` +
          `CapBnd:\t${hex(DOCKER_DEFAULT_MASK)}\nCapAmb:\t${hex(0n)}\n` +
          'NoNewPrivs:\t1\nSeccomp:\t2\n',
      );
    });

    it("gives another uid no effective capabilities, the bounding set still Docker's", async () => {
      const r = await run({
        argv: sh('id -u; id -g; grep -E "^Cap(Eff|Bnd):" /proc/self/status'),
        user: { uid: 1000, gid: 1000 },
      });
      assert.equal(r.out, `1000\n1000\nCapEff:\t${hex(0n)}\nCapBnd:\t${hex(DOCKER_DEFAULT_MASK)}\n`);
    });

    it('refuses unshare, mount and keyctl with "Operation not permitted"', async () => {
      const r = await run({
        argv: sh(
          'unshare -m true; echo "unshare=$?"; mount -t tmpfs x /mnt; echo "mount=$?"; ' +
            '/bin/probe keyctl unshare_user clone_user',
        ),
      });
      assert.match(r.out, /unshare.*Operation not permitted\n(.*\n)?unshare=[1-9]\d*\n/);
      // busybox's words for EPERM from mount(2).
      assert.match(r.out, /mount: permission denied \(are you root\?\)\nmount=[1-9]\d*\n/);
      assert.match(r.out, /keyctl=EPERM\nunshare_user=EPERM\nclone_user=EPERM\n$/);
    });

    it("--cap-add SYS_ADMIN lifts the mount rules (capability and filter), not keyctl's", async () => {
      const r = await run({
        argv: sh('mount -t tmpfs x /mnt && echo mounted; /bin/probe keyctl'),
        capAdd: ['sys_admin'],
      });
      assert.match(r.out, /^mounted\nkeyctl=EPERM\n$/);
    });

    it(
      'masks /proc/keys (and kcore) and /sys/firmware, makes ' + '/proc/sys read-only, and has a minimal /dev',
      async () => {
        assert.ok(readFileSync('/proc/keys', 'utf8').length > 0, 'premise: the host shows keys');
        const kcore = existsSync('/proc/kcore') ? '/proc/kcore' : '/proc/keys';
        const r = await run({
          argv: sh(
            `cat /proc/keys ${kcore} | wc -c; ls -A /sys/firmware | wc -l; echo x ` +
              `> /proc/sys/kernel/hostname; echo "w=$?"; echo --; ls -A /dev; echo ` +
              '--; ls -l /dev/null /dev/ptmx /dev/fd',
          ),
        });
        const lines = r.out.split('\n');
        assert.equal(lines[0].trim(), '0', '/proc/keys and /proc/kcore read empty');
        assert.equal(lines[1].trim(), '0', '/sys/firmware is empty');
        assert.match(r.out, /Read-only file system\nw=1\n/);
        assert.deepEqual(r.out.split('--\n')[1].trim().split('\n'), [
          'fd',
          'full',
          'mqueue',
          'null',
          'ptmx',
          'pts',
          'random',
          'shm',
          'stderr',
          'stdin',
          'stdout',
          'tty',
          'urandom',
          'zero',
        ]);
        assert.match(r.out, /^crw-rw-rw-\s+1 0\s+0\s+1,\s+3 .* \/dev\/null$/m);
        assert.match(r.out, /\/dev\/ptmx -> pts\/ptmx$/m);
        assert.match(r.out, /\/dev\/fd -> \/proc\/self\/fd$/m);
      },
    );

    it('--privileged: every capability we have, no seccomp, no no_new_privs, no masks, may mount', async () => {
      const host = hostFacts();
      const r = await run({
        argv: sh(
          'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; mount -t tmpfs x /mnt && ' +
            'echo mounted; ls -A /dev | wc -l; grep -c " /proc/kcore " /proc/self/mountinfo',
        ),
        privileged: true,
      });
      assert.equal(
        r.out,
        `CapEff:\t${hex(host.capabilities)}\nNoNewPrivs:\t0\nSeccomp:\t0\nmounted\n${readdirSync('/dev').length}\n0\n`,
      );
    });
  });

  describeAsRoot('filesystems', () => {
    it('runs on an overlay whose upper layer takes the writes, and unmounts it with the container', async () => {
      const upper = join(tmp, 'ov/upper'),
        work = join(tmp, 'ov/work'),
        mountpoint = join(tmp, 'ov/root');
      const r = await run({
        argv: sh('echo hi > /written; grep " / / " /proc/self/mountinfo | grep -o " - overlay "; cat /written'),
        rootfs: { lower: [rootfs], upper, work, mountpoint },
      });
      assert.deepEqual([r.code, r.out], [0, ' - overlay \nhi\n']);
      assert.equal(readFileSync(join(upper, 'written'), 'utf8'), 'hi\n');
      assert.ok(!existsSync(join(rootfs, 'written')), 'the lower layer is untouched');
      assert.deepEqual(readdirSync(mountpoint), [], 'nothing mounted on the mountpoint on the host');
      assert.deepEqual(hostMountsUnderTmp(), []);
    });

    it(
      '--read-only: / refuses writes with EROFS; a volume is ' + 'writable, a :ro one is not; a file volume works',
      async () => {
        const rw = join(tmp, 'vol-rw'),
          ro = join(tmp, 'vol-ro'),
          file = join(tmp, 'app.conf');
        mkdirSync(rw);
        mkdirSync(ro);
        writeFileSync(file, 'conf\n');
        const r = await run({
          argv: sh(
            'touch /x; echo "root=$?"; touch /data/y && echo data-ok; touch /ro/z; echo ' +
              '"ro=$?"; cat /etc/app.conf; touch /dev/shm/s && echo shm-ok',
          ),
          readOnly: true,
          volumes: [`${rw}:/data`, { host: ro, container: '/ro', ro: true }, `${file}:/etc/app.conf:ro`],
        });
        assert.equal(
          r.out,
          'touch: /x: Read-only file system\nroot=1\ndata-ok\n' +
            'touch: /ro/z: Read-only file system\nro=1\nconf\nshm-ok\n',
        );
        assert.ok(existsSync(join(rw, 'y')));
        assert.ok(!existsSync(join(ro, 'z')));
      },
    );

    it("resolves mount points inside the root: an image's symlink cannot point a mount at the host", async () => {
      const outside = join(tmp, 'outside'),
        vol = join(tmp, 'vol-escape');
      mkdirSync(outside);
      mkdirSync(vol);
      writeFileSync(join(vol, 'marker'), 'vol\n');
      symlinkSync(outside, join(rootfs, 'escape')); // absolute: on the host it leads out of the rootfs
      try {
        // Inside the root the link dangles: refused (nothing is created through a dangling link).
        expectNativeError(
          () => runContainer(spec({ argv: ['true'], volumes: [`${vol}:/escape/sub`] }), { cgroupParent }),
          { code: 'ENOENT', syscall: 'openat2', path: `${rootfs}/escape/sub` },
        );
        assert.ok(!existsSync(join(outside, 'sub')), 'nothing created outside the root');
        // Once the link's target exists inside the root, the mount goes there.
        mkdirSync(join(rootfs, outside), { recursive: true });
        const r = await run({ argv: sh('cat /escape/sub/marker'), volumes: [`${vol}:/escape/sub`] });
        assert.deepEqual([r.code, r.out], [0, 'vol\n']);
        assert.ok(!existsSync(join(outside, 'sub')), 'still nothing created outside the root');
        assert.ok(existsSync(join(rootfs, outside, 'sub')), 'the mount point was made inside it');
      } finally {
        rmSync(join(rootfs, 'escape'));
        rmSync(join(rootfs, tmp), { recursive: true, force: true });
      }
    });

    it('mounts --tmpfs with its options', async () => {
      const r = await run({ argv: sh('grep " /run " /proc/self/mountinfo'), tmpfs: ['/run:size=1m,mode=700'] });
      assert.match(r.out, / \/run rw,nosuid,nodev,noexec.* - tmpfs \S+ rw,size=1024k,mode=700/);
    });
  });

  describe('exits and failures', () => {
    itAsRoot('reports exit codes 0, 1, 42 and 255 exactly', async () => {
      for (const code of [0, 1, 42, 255]) assert.deepEqual((await run({ argv: sh(`exit ${code}`) })).code, code);
    });

    itAsRoot(
      'stop(): a handler for SIGTERM ends it its own way; without one SIGKILL follows the grace period',
      async () => {
        const outFile = join(tmp, 'trap');
        const fd = openSync(outFile, 'w');
        const trapped = runContainer(
          spec({ argv: sh('trap "exit 143" TERM; echo ready; while :; do sleep 0.05; done'), stdout: fd }),
          { cgroupParent },
        );
        closeSync(fd);
        await until(() => readFileSync(outFile, 'utf8') === 'ready\n');
        assert.deepEqual(await trapped.stop(5000), { code: 143, signal: null });
        const plain = runContainer(spec({ argv: ['sleep', '30'] }), { cgroupParent });
        const t0 = Date.now();
        assert.deepEqual(await plain.stop(300), { code: null, signal: 'SIGKILL' });
        assert.ok(Date.now() - t0 >= 290, 'SIGTERM alone did not end it');
      },
    );

    itAsRoot('throws a missing program as execve ENOENT with its path, leaving no mount or cgroup behind', () => {
      const upper = join(tmp, 'ov2/upper'),
        work = join(tmp, 'ov2/work'),
        mountpoint = join(tmp, 'ov2/root');
      const id = `missing-${process.pid}`;
      expectNativeError(
        () =>
          runContainer(spec({ id, argv: ['/no/such/program'], rootfs: { lower: [rootfs], upper, work, mountpoint } }), {
            cgroupParent,
          }),
        {
          code: 'ENOENT',
          syscall: 'execve',
          path: '/no/such/program',
          message: /^execve\(\/no\/such\/program\): ENOENT/,
        },
      );
      expectNativeError(() => runContainer(spec({ id, argv: ['no-such-program'] }), { cgroupParent }), {
        code: 'ENOENT',
        syscall: 'execve',
        path: 'no-such-program',
      });
      assert.deepEqual(hostMountsUnderTmp(), []);
      assert.ok(!existsSync(join(cgroupParent, id)));
    });

    itAsRoot('throws a failed mount with the syscall and the path', () => {
      expectNativeError(() => runContainer(spec({ argv: ['true'], tmpfs: ['/run:size=lots'] }), { cgroupParent }), {
        code: 'EINVAL',
        syscall: 'mount',
        path: `${rootfs}/run`,
        message: new RegExp(`^mount\\(tmpfs, ${rootfs}/run, tmpfs\\): EINVAL`),
      });
      expectNativeError(() => runContainer(spec({ argv: ['true'], cwd: '/nowhere' }), { cgroupParent }), {
        code: 'ENOENT',
        syscall: 'chdir',
        path: '/nowhere',
      });
      assert.deepEqual(hostMountsUnderTmp(), []);
    });

    it('refuses bad specs before creating anything', () => {
      assert.throws(
        () => runContainer(spec({ argv: ['true'], volumes: [`${tmp}:/a/../etc`] }), { cgroupParent }),
        (e) => isContainerError(e, 'EUNSAFE'),
      );
      assert.throws(
        () => runContainer(spec({ argv: ['true'], volumes: [`${tmp}/nope:/data`] }), { cgroupParent }),
        (e) => isContainerError(e, 'ENOENT'),
      );
      assert.throws(
        () => runContainer(spec({ argv: ['true'], id: '../x' }), { cgroupParent }),
        (e) => isContainerError(e, 'EINVAL'),
      );
      assert.throws(
        () => runContainer(spec({ argv: ['true'], capAdd: ['CAP_NOPE'] }), { cgroupParent }),
        (e) => isContainerError(e, 'ECAPABILITY') && /CAP_NOPE/.test(e.message),
      );
    });

    itAsRoot('writes cgroup limits, or says clearly why it cannot (a hybrid host has no v2 controllers)', async () => {
      const id = `limits-${process.pid}`;
      const limits = { memoryMax: 64 << 20, cpuMax: { quota: 50000 }, pidsMax: 64 };
      const root = cgroup2Mounts()[0];
      const offered = readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
      if (!['memory', 'cpu', 'pids'].every((c) => offered.includes(c))) {
        assert.throws(
          () => runContainer(spec({ id, argv: ['true'], limits }), { cgroupParent }),
          (e) => isContainerError(e, 'ECGROUP') && /controller .* does not offer it .*hybrid/.test(e.message),
        );
        assert.ok(!existsSync(join(cgroupParent, id)), 'the cgroup is removed again');
        return;
      }
      const r = runContainer(spec({ id, argv: ['sleep', '30'], limits }), { cgroupParent });
      try {
        assert.equal(readFileSync(join(r.cgroup!, 'memory.max'), 'utf8').trim(), String(64 << 20));
        assert.equal(readFileSync(join(r.cgroup!, 'cpu.max'), 'utf8').trim(), '50000 100000');
        assert.equal(readFileSync(join(r.cgroup!, 'pids.max'), 'utf8').trim(), '64');
      } finally {
        r.kill();
        await r.wait();
      }
    });

    itAsRoot("runs through PID 1's process table too", async () => {
      const table = new ProcessTable(native, { warn: () => {} });
      table.start();
      try {
        const c = runContainer(spec({ argv: sh('exit 7') }), { cgroupParent, table });
        assert.deepEqual(await c.wait(), { code: 7, signal: null });
      } finally {
        table.stop();
      }
    });
  });

  describe('capabilities and options (pure)', () => {
    const host: HostFacts = {
      capabilities: ALL_CAPABILITIES_MASK,
      devices: { null: { major: 1, minor: 3 } },
      hostname: 'host',
    };

    it("knows the names, Docker's default set and --cap-add/--cap-drop", () => {
      assert.equal(capabilityNumber('CHOWN'), 0);
      assert.equal(capabilityNumber('cap_checkpoint_restore'), 40);
      assert.equal(capabilityNumber('Sys_Admin'), 21);
      assert.equal(capabilityMask(DEFAULT_CAPABILITIES), DOCKER_DEFAULT_MASK);
      assert.equal(resolveCapabilities(), DOCKER_DEFAULT_MASK);
      assert.equal(
        resolveCapabilities(['NET_ADMIN'], ['CHOWN', 'cap_kill']),
        (DOCKER_DEFAULT_MASK | (1n << 12n)) & ~1n & ~(1n << 5n),
      );
      assert.equal(resolveCapabilities(['ALL'], ['SYS_ADMIN']), ALL_CAPABILITIES_MASK & ~(1n << 21n));
      assert.equal(resolveCapabilities(['CHOWN'], ['all']), 1n);
      assert.equal(resolveCapabilities(['CHOWN'], ['CHOWN']), DOCKER_DEFAULT_MASK, 'an added capability wins');
      assert.deepEqual(capabilityNames(0b1001n | (1n << 40n)), ['CAP_CHOWN', 'CAP_FOWNER', 'CAP_CHECKPOINT_RESTORE']);
      assert.throws(
        () => resolveCapabilities(['FLY']),
        (e) => isContainerError(e, 'ECAPABILITY') && /cap-add "FLY"/.test(e.message),
      );
    });

    it('builds the spawn options: mounts in order, devices, masks, filter, env', () => {
      const o = containerSpawnOptions(
        {
          id: 'c1',
          rootfs: { lower: ['/l1', '/l2'], upper: '/u', work: '/w', mountpoint: '/m' },
          argv: ['app'],
          volumes: [`${rootfs}/bin:/data/deep`, `${tmp}:/data:ro`, `${rootfs}/bin/busybox:/data/bb`],
          env: ['PATH=/bin'],
        },
        host,
      );
      assert.deepEqual(o.container?.rootMount, {
        source: 'overlay',
        fstype: 'overlay',
        flags: 0,
        data: 'lowerdir=/l1:/l2,upperdir=/u,workdir=/w',
      });
      assert.equal(o.container?.root, '/m');
      const targets = o.container!.mounts!.map((m) => m.target);
      assert.deepEqual(targets, [
        '/proc',
        '/dev',
        '/dev/pts',
        '/dev/shm',
        '/dev/mqueue',
        '/sys',
        '/sys/fs/cgroup',
        '/data',
        '/data/deep',
        '/data/bb',
      ]);
      assert.equal(o.container!.mounts![7].flags & 1, 1, '/data is read-only');
      assert.deepEqual(
        o.container!.mounts!.slice(8).map((m) => m.mkdir),
        ['dir', 'file'],
      );
      assert.deepEqual(o.container!.maskedPaths, MASKED_PATHS);
      assert.equal(o.capabilities, DOCKER_DEFAULT_MASK);
      assert.ok(o.seccomp && o.seccomp.length > 0);
      assert.equal(o.noNewPrivs, true);
      assert.deepEqual(o.env, ['PATH=/bin', 'HOSTNAME=c1', 'HOME=/root']);
      assert.equal(o.container?.newNetwork, true);
      const p = containerSpawnOptions(
        { id: 'c1', rootfs: { bind: '/r' }, argv: ['app'], privileged: true, network: 'host' },
        host,
      );
      assert.deepEqual(
        [
          p.seccomp,
          p.noNewPrivs,
          p.capabilities,
          p.container?.maskedPaths,
          p.container?.devices,
          p.container?.newNetwork,
          p.container?.hostname,
        ],
        [undefined, false, ALL_CAPABILITIES_MASK, [], [], false, 'host'],
      );
      assert.deepEqual(parseVolume('/a:/b:ro'), { host: '/a', container: '/b', ro: true });
      assert.deepEqual(parseTmpfs('/run:exec,size=1m'), {
        source: 'tmpfs',
        target: '/run',
        fstype: 'tmpfs',
        flags: 2 | 4,
        data: 'size=1m',
        mkdir: 'dir',
      });
      assert.throws(
        () =>
          containerSpawnOptions(
            { id: 'c', rootfs: { lower: ['/a:b'], upper: '/u', work: '/w', mountpoint: '/m' }, argv: ['x'] },
            host,
          ),
        (e) => isContainerError(e, 'EUNSAFE'),
      );
      assert.throws(
        () =>
          containerSpawnOptions(
            { id: 'c', rootfs: { bind: '/r' }, argv: ['x'], capAdd: ['SYS_ADMIN'] },
            { ...host, capabilities: 1n },
          ),
        (e) => isContainerError(e, 'ECAPABILITY'),
      );
      assert.deepEqual(limitFiles({ memoryMax: 'max', cpuMax: { quota: 20000, period: 50000 }, pidsMax: 10 }), [
        ['memory.max', 'max'],
        ['cpu.max', '20000 50000'],
        ['pids.max', '10'],
      ]);
    });
  });
});
