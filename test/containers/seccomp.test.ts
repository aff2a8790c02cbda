// The seccomp filter of containers/seccomp.ts: its decisions checked with a small classic-BPF
// interpreter, then the real thing: a static probe program run through native.spawn() with the
// filter installed (as root), whose denied syscalls must fail with EPERM (ENOSYS, or a SIGSYS kill).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isContainerError } from '../../containers/errors.js';
import { capabilityMask } from '../../containers/capabilities.js';
import {
  AUDIT_ARCH_X86_64,
  CLONE_NAMESPACE_FLAGS,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  X86_64_MAX_SYSCALL,
  X86_64_SYSCALLS,
  deniedSyscalls,
  seccompProgram,
} from '../../containers/seccomp.js';
import { native } from '../../native/native.js';
import { expectNativeError } from '../native/helpers.js';

const AUDIT_ARCH_I386 = 0x40000003;
const EPERM = SECCOMP_RET_ERRNO | 1;
const ENOSYS = SECCOMP_RET_ERRNO | 38;

/** Runs a classic BPF seccomp program on one struct seccomp_data; returns the action. */
function runFilter(prog: Buffer, call: { nr: number; arch?: number; args?: (number | bigint)[] }): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(call.nr >>> 0, 0);
  data.writeUInt32LE(call.arch ?? AUDIT_ARCH_X86_64, 4);
  (call.args ?? []).forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i));
  const n = prog.length / 8;
  let acc = 0;
  for (let pc = 0, steps = 0; steps < 10000; steps++) {
    assert.ok(pc < n, `fell off the program at ${pc}`);
    const code = prog.readUInt16LE(pc * 8),
      jt = prog[pc * 8 + 2],
      jf = prog[pc * 8 + 3],
      k = prog.readUInt32LE(pc * 8 + 4);
    const branch = (cond: boolean) => {
      pc += 1 + (cond ? jt : jf);
    };
    switch (code) {
      case 0x20:
        assert.ok(k % 4 === 0 && k < 64, `load at ${k}`);
        acc = data.readUInt32LE(k);
        pc++;
        break;
      case 0x15:
        branch(acc === k);
        break;
      case 0x25:
        branch(acc > k);
        break;
      case 0x35:
        branch(acc >= k);
        break;
      case 0x45:
        branch((acc & k) !== 0);
        break;
      case 0x05:
        pc += 1 + k;
        break;
      case 0x06:
        return k;
      default:
        assert.fail(`unknown opcode 0x${code.toString(16)} at ${pc}`);
    }
  }
  return assert.fail('the program loops');
}

const nr = (name: string) => X86_64_SYSCALLS[name];

// A probe that makes the named syscalls and prints NAME=ok or NAME=ERRNO for each.
const PROBE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static long child(long r) { if (r == 0) _exit(0); if (r > 0) waitpid((pid_t)r, NULL, 0); return r; }
static long call(const char *n) {
  if (!strcmp(n, "getpid")) return syscall(SYS_getpid);
  if (!strcmp(n, "keyctl")) return syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
  if (!strcmp(n, "add_key")) return syscall(SYS_add_key, "user", "keel-probe", "x", 1, -3);
  if (!strcmp(n, "unshare_user")) return syscall(SYS_unshare, CLONE_NEWUSER);
  if (!strcmp(n, "unshare_ns")) return syscall(SYS_unshare, CLONE_NEWNS);
  if (!strcmp(n, "setns")) return syscall(SYS_setns, -1, 0);
  if (!strcmp(n, "mount")) return syscall(SYS_mount, "none", "/nonexistent-keel-probe", "tmpfs", 0, 0);
  if (!strcmp(n, "bpf")) return syscall(SYS_bpf, -1, 0, 0);
  if (!strcmp(n, "clone_plain")) return child(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
  if (!strcmp(n, "clone_user")) return child(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  if (!strcmp(n, "clone3")) {
    struct clone_args a;
    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    return child(syscall(SYS_clone3, &a, sizeof a));
  }
  if (!strcmp(n, "x32_getpid")) return syscall(0x40000000 | SYS_getpid);
  if (!strcmp(n, "personality_query")) return syscall(SYS_personality, 0xffffffffUL);
  if (!strcmp(n, "personality_exec")) return syscall(SYS_personality, 0x0400000UL /* READ_IMPLIES_EXEC */);
  if (!strcmp(n, "i386_getpid")) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    if (r < 0) { errno = (int)-r; return -1; }
    return r;
  }
  errno = EINVAL;
  return -1;
}
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    errno = 0;
    long r = call(argv[i]);
    printf("%s=%s\n", argv[i], r < 0 ? strerrorname_np(errno) : "ok");
    fflush(stdout);
  }
  return 0;
}
`;

/** Compiles the probe statically (it also runs inside a busybox container); null without gcc. */
function buildProbe(dir: string): string | null {
  const src = join(dir, 'probe.c'),
    bin = join(dir, 'probe');
  writeFileSync(src, PROBE_C);
  try {
    execFileSync('gcc', ['-static', '-O1', '-o', bin, src], { stdio: 'pipe' });
    return bin;
  } catch {
    return null;
  }
}

describe('containers/seccomp', () => {
  describe('the program', () => {
    const prog = seccompProgram();

    it('is a whole number of sock_filter instructions, well within BPF_MAXINSNS', () => {
      assert.equal(prog.length % 8, 0);
      assert.ok(prog.length / 8 > 50 && prog.length / 8 < 200, `${prog.length / 8} instructions`);
    });

    it('kills another architecture and refuses x32 and unknown numbers with ENOSYS', () => {
      assert.equal(runFilter(prog, { nr: 20, arch: AUDIT_ARCH_I386 }), SECCOMP_RET_KILL_PROCESS);
      assert.equal(runFilter(prog, { nr: 0x40000000 | nr('getpid') }), ENOSYS);
      assert.equal(runFilter(prog, { nr: 0x40000000 | nr('mount') }), ENOSYS);
      assert.equal(runFilter(prog, { nr: X86_64_MAX_SYSCALL + 1 }), ENOSYS);
      assert.equal(runFilter(prog, { nr: 0xffffffff }), ENOSYS);
    });

    it('denies the global-state syscalls with EPERM and allows the rest', () => {
      for (const name of [
        'mount',
        'umount2',
        'unshare',
        'setns',
        'keyctl',
        'add_key',
        'request_key',
        'bpf',
        'pivot_root',
        'swapon',
        'swapoff',
        'reboot',
        'init_module',
        'finit_module',
        'delete_module',
        'kexec_load',
        'kexec_file_load',
        'open_by_handle_at',
        'perf_event_open',
        'userfaultfd',
        'acct',
        'settimeofday',
        'clock_settime',
        'clock_adjtime',
        'adjtimex',
        'quotactl',
        'lookup_dcookie',
        'iopl',
        'ioperm',
        'create_module',
        'get_kernel_syms',
        'query_module',
        'uselib',
        'nfsservctl',
        'sysfs',
        '_sysctl',
        'fsopen',
        'fsconfig',
        'fsmount',
        'fspick',
        'move_mount',
        'open_tree',
        'mount_setattr',
        'io_uring_setup',
      ]) {
        assert.equal(runFilter(prog, { nr: nr(name) }), EPERM, name);
      }
      for (const name of [
        'read',
        'write',
        'openat',
        'execve',
        'getpid',
        'exit_group',
        'futex',
        'mmap',
        'ptrace',
        'close_range',
        'file_setattr',
      ]) {
        assert.equal(runFilter(prog, { nr: nr(name) }), SECCOMP_RET_ALLOW, name);
      }
    });

    it('checks clone flags and personality values; clone3 gets ENOSYS', () => {
      const SIGCHLD = 17,
        CLONE_VM = 0x100,
        CLONE_NEWUSER = 0x10000000;
      assert.equal(runFilter(prog, { nr: nr('clone'), args: [SIGCHLD] }), SECCOMP_RET_ALLOW);
      assert.equal(
        runFilter(prog, { nr: nr('clone'), args: [CLONE_VM | 0x3d0f00] }),
        SECCOMP_RET_ALLOW,
        'pthread_create',
      );
      assert.equal(runFilter(prog, { nr: nr('clone'), args: [CLONE_NEWUSER | SIGCHLD] }), EPERM);
      for (let bit = 0; bit < 32; bit++) {
        if (CLONE_NAMESPACE_FLAGS & (1 << bit))
          assert.equal(runFilter(prog, { nr: nr('clone'), args: [(1 << bit) >>> 0] }), EPERM, `bit ${bit}`);
      }
      assert.equal(runFilter(prog, { nr: nr('clone3') }), ENOSYS);
      for (const p of [0, 8, 0x20000, 0x20008, 0xffffffff])
        assert.equal(runFilter(prog, { nr: nr('personality'), args: [p] }), SECCOMP_RET_ALLOW, `0x${p.toString(16)}`);
      assert.equal(runFilter(prog, { nr: nr('personality'), args: [0x0400000] }), EPERM);
    });

    it('lifts rules for kept capabilities, as Docker does', () => {
      const admin = seccompProgram({ capabilities: capabilityMask(['SYS_ADMIN']) });
      for (const name of ['mount', 'unshare', 'setns', 'bpf', 'perf_event_open'])
        assert.equal(runFilter(admin, { nr: nr(name) }), SECCOMP_RET_ALLOW, name);
      assert.equal(runFilter(admin, { nr: nr('clone'), args: [0x10000000] }), SECCOMP_RET_ALLOW);
      assert.equal(runFilter(admin, { nr: nr('clone3') }), SECCOMP_RET_ALLOW);
      assert.equal(runFilter(admin, { nr: nr('keyctl') }), EPERM, 'keyctl has no capability that lifts it');
      assert.equal(runFilter(admin, { nr: nr('reboot') }), EPERM);
      const time = seccompProgram({ capabilities: capabilityMask(['SYS_TIME']) });
      assert.equal(runFilter(time, { nr: nr('settimeofday') }), SECCOMP_RET_ALLOW);
      assert.equal(runFilter(time, { nr: nr('mount') }), EPERM);
    });

    it('takes extra denials and exceptions, and refuses unknown names', () => {
      const p = seccompProgram({ deny: ['chroot'], allow: ['keyctl', 'personality'] });
      assert.equal(runFilter(p, { nr: nr('chroot') }), EPERM);
      assert.equal(runFilter(p, { nr: nr('keyctl') }), SECCOMP_RET_ALLOW);
      assert.equal(runFilter(p, { nr: nr('personality'), args: [0x0400000] }), SECCOMP_RET_ALLOW);
      assert.ok(!deniedSyscalls({ allow: ['keyctl'] }).includes('keyctl'));
      assert.ok(!deniedSyscalls().includes('vm86'), 'i386-only names are skipped');
      assert.throws(
        () => seccompProgram({ deny: ['no_such_call'] }),
        (e) => isContainerError(e, 'ESYSCALL') && /no_such_call/.test(e.message),
      );
    });
  });

  describe('installed by native.spawn', () => {
    let dir: string;
    let probe: string | null;

    before(function () {
      dir = realpathSync(mkdtempSync(join(tmpdir(), 'keel-seccomp-')));
      probe = buildProbe(dir);
      // gcc and libc6-dev come with make deps: a missing compiler is a broken setup, not a skip.
      if (!probe)
        throw new Error('cannot build the static seccomp probe with gcc -static: run make deps (gcc, libc6-dev)');
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    function run(
      calls: string[],
      extra: { seccomp?: Buffer; noNewPrivs?: boolean } = {},
    ): { out: Record<string, string>; signal: number | null; code: number | null } {
      const outFile = join(dir, 'out');
      const fd = openSync(outFile, 'w');
      try {
        const pid = native.spawn({
          file: probe!,
          argv: ['probe', ...calls],
          env: [],
          stdout: fd,
          stderr: fd,
          ...extra,
        });
        const w = native.waitpid(pid, 0)!;
        const out = Object.fromEntries(
          readFileSync(outFile, 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => l.split('=')),
        );
        return { out, signal: w.signal, code: w.code };
      } finally {
        closeSync(fd);
      }
    }

    const CALLS = [
      'getpid',
      'keyctl',
      'add_key',
      'unshare_user',
      'unshare_ns',
      'setns',
      'mount',
      'bpf',
      'clone_plain',
      'clone_user',
      'clone3',
      'x32_getpid',
      'personality_query',
      'personality_exec',
    ];

    it('makes the denied syscalls fail with EPERM (ENOSYS for clone3 and x32) while the rest works', () => {
      const { out, code } = run(CALLS, { seccomp: seccompProgram(), noNewPrivs: true });
      assert.equal(code, 0);
      assert.deepEqual(out, {
        getpid: 'ok',
        keyctl: 'EPERM',
        add_key: 'EPERM',
        unshare_user: 'EPERM',
        unshare_ns: 'EPERM',
        setns: 'EPERM',
        mount: 'EPERM',
        bpf: 'EPERM',
        clone_plain: 'ok',
        clone_user: 'EPERM',
        clone3: 'ENOSYS',
        x32_getpid: 'ENOSYS',
        personality_query: 'ok',
        personality_exec: 'EPERM',
      });
    });

    it("is what makes them fail: without it (as root) they get the kernel's own answers", () => {
      // clone_user before unshare_user: once in a new user namespace (unmapped), another one is refused.
      const { out } = run(['keyctl', 'clone_user', 'clone3', 'setns', 'mount', 'personality_exec', 'unshare_user']);
      assert.equal(out.keyctl, 'ok');
      assert.equal(out.unshare_user, 'ok');
      assert.equal(out.setns, 'EBADF');
      assert.equal(out.mount, 'ENOENT');
      assert.equal(out.clone_user, 'ok');
      assert.equal(out.clone3, 'ok');
      assert.equal(out.personality_exec, 'ok');
    });

    it('kills a process that enters through the i386 ABI (int 0x80) with SIGSYS', () => {
      // What the kernel says without the filter decides what there is to check; neither branch skips.
      const bare = run(['i386_getpid']);
      if (bare.out.i386_getpid !== 'ok') {
        // No IA32 emulation (not built, or ia32_emulation=0): int 0x80 is refused by the kernel itself,
        // with #GP (SIGSEGV) or ENOSYS, so there is no i386 entry for the filter to guard.
        assert.ok(
          bare.out.i386_getpid === 'ENOSYS' || (bare.signal === 11 && bare.out.i386_getpid === undefined),
          `without IA32 emulation int 0x80 gives ENOSYS or SIGSEGV, not ${JSON.stringify(bare)}`,
        );
        return;
      }
      const r = run(['getpid', 'i386_getpid'], { seccomp: seccompProgram(), noNewPrivs: true });
      assert.equal(r.out.getpid, 'ok');
      assert.equal(r.out.i386_getpid, undefined);
      assert.equal(r.signal, 31, 'SIGSYS');
    });

    it('shows in /proc/PID/status and is inherited by children', () => {
      const outFile = join(dir, 'status');
      const fd = openSync(outFile, 'w');
      try {
        const pid = native.spawn({
          file: '/bin/sh',
          argv: ['sh', '-c', 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status'],
          env: [],
          stdout: fd,
          seccomp: seccompProgram(),
          noNewPrivs: true,
        });
        assert.equal(native.waitpid(pid, 0)?.code, 0);
        assert.equal(readFileSync(outFile, 'utf8'), 'NoNewPrivs:\t1\nSeccomp:\t2\n');
      } finally {
        closeSync(fd);
      }
    });

    it('reports a program the kernel rejects like any other pre-exec failure, and checks the Buffer', () => {
      // Opcode 0xffff does not exist: PR_SET_SECCOMP fails with EINVAL in the child.
      const bad = Buffer.from([0xff, 0xff, 0, 0, 0, 0, 0, 0]);
      expectNativeError(
        () => native.spawn({ file: '/bin/true', argv: ['true'], env: [], seccomp: bad, noNewPrivs: true }),
        {
          code: 'EINVAL',
          syscall: 'prctl',
          message: /^prctl\(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, 1 instructions\): EINVAL/,
        },
      );
      assert.throws(() => native.spawn({ file: '/bin/true', argv: ['true'], env: [], seccomp: Buffer.alloc(7) }), {
        name: 'TypeError',
        message: 'spawn: seccomp must be 1 to 4096 struct sock_filter (8 bytes each), received 7 bytes',
      });
      assert.throws(
        () => native.spawn({ file: '/bin/true', argv: ['true'], env: [], seccomp: 'x' as unknown as Buffer }),
        { name: 'TypeError', message: 'spawn: seccomp must be a Buffer, received string' },
      );
    });
  });
});
