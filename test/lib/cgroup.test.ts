// lib/cgroup.ts, shared by init's services and keel's containers: limit files, controller
// delegation (on a fake kernel: this host's cgroup2 may have no controllers), processes, removal.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  cgroupProcs,
  delegateControllers,
  killCgroup,
  limitFiles,
  limitProblem,
  removeCgroup,
  type CgroupIo,
} from '../../lib/cgroup.js';
import { isKeelError } from '../../lib/errors.js';
import { enableControllers, limitFiles as unitLimitFiles } from '../../init/cgroup.js';
import { limitFiles as containerLimitFiles } from '../../containers/container-cgroup.js';

const list = (p: string): string[] => (existsSync(p) ? readFileSync(p, 'utf8').split(/\s+/).filter(Boolean) : []);

/**
 * cgroup files on disk with the kernel's rules for cgroup.subtree_control: a write naming a
 * controller the group does not offer is refused whole (ENOENT); one that succeeds offers the
 * enabled controllers to the child groups.
 */
function fakeKernel(writes: string[] = []): CgroupIo {
  return {
    read: (p) => readFileSync(p, 'utf8'),
    write: (p, data) => {
      writes.push(`${p} ${data}`);
      if (!p.endsWith('/cgroup.subtree_control')) return writeFileSync(p, data);
      const dir = dirname(p);
      const tokens = data.split(/\s+/).filter(Boolean);
      if (tokens.some((t) => !list(join(dir, 'cgroup.controllers')).includes(t.slice(1)))) {
        throw Object.assign(new Error(`write ${p}: No such file or directory`), { code: 'ENOENT' });
      }
      const on = new Set(list(p));
      for (const t of tokens)
        if (t[0] === '+') on.add(t.slice(1));
        else on.delete(t.slice(1));
      writeFileSync(p, [...on].join(' '));
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) writeFileSync(join(dir, e.name, 'cgroup.controllers'), [...on].join(' '));
      }
    },
  };
}

describe('lib/cgroup', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'keel-cgroup-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  describe('limits', () => {
    it('writes memory.max, cpu.max and pids.max in that order, cpu.max with a default 100 ms period', () => {
      assert.deepEqual(limitFiles({ pidsMax: 'max', memoryMax: 1 << 20, cpuMax: { quota: 50000 } }), [
        ['memory.max', '1048576'],
        ['cpu.max', '50000 100000'],
        ['pids.max', 'max'],
      ]);
      assert.deepEqual(limitFiles({}), []);
    });

    it('names the first bad limit and why', () => {
      assert.equal(limitProblem({ memoryMax: 0, cpuMax: { quota: 'max', period: 1000 }, pidsMax: 1 }), null);
      assert.deepEqual(limitProblem({ memoryMax: 1.5 }), {
        what: 'memoryMax',
        reason: "must be 'max' or an integer >= 0, not 1.5",
      });
      assert.deepEqual(limitProblem({ cpuMax: { quota: 999 } }), {
        what: 'cpuMax.quota',
        reason: "must be 'max' or an integer >= 1000, not 999",
      });
      assert.deepEqual(limitProblem({ pidsMax: 0 }), {
        what: 'pidsMax',
        reason: "must be 'max' or an integer >= 1, not 0",
      });
    });

    it("a unit's MemoryMax=, CPUQuota= and TasksMax= become the same files, as systemd writes them", () => {
      assert.deepEqual(unitLimitFiles({ memoryMax: 1500000.7, cpuQuota: 50, tasksMax: Infinity }), [
        ['memory.max', '1500000'],
        ['cpu.max', '50000 100000'],
        ['pids.max', 'max'],
      ]);
      assert.deepEqual(unitLimitFiles({ memoryMax: Infinity, cpuQuota: 0.1, tasksMax: 12 }), [
        ['memory.max', 'max'],
        ['cpu.max', '1000 100000'],
        ['pids.max', '12'],
      ]);
      assert.deepEqual(unitLimitFiles({ memoryMax: null, cpuQuota: null, tasksMax: null }), []);
    });

    it("a container's limits are checked first: EINVAL naming limits.WHAT", () => {
      assert.deepEqual(containerLimitFiles({ cpuMax: { quota: 20000, period: 50000 } }), [['cpu.max', '20000 50000']]);
      assert.throws(() => containerLimitFiles({ pidsMax: -1 }), {
        code: 'EINVAL',
        message: /^cannot run the container: limits\.pidsMax must be 'max'/,
      });
    });
  });

  describe('controllers', () => {
    const group = (dir: string, offered: string) => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cgroup.controllers'), offered);
      writeFileSync(join(dir, 'cgroup.subtree_control'), '');
    };

    it(
      'init delegates each service controller on its own: one the kernel ' +
        'lacks no longer keeps the others from services',
      () => {
        // Before, init wrote "+memory +pids +cpu" in one go, which the kernel refuses whole.
        group(root, 'memory pids');
        const writes: string[] = [];
        assert.throws(
          () => enableControllers(root, ['memory', 'cpu', 'pids'], fakeKernel(writes)),
          (e) =>
            isKeelError(e, 'ECGROUP') &&
            /the cpu controller below /.test(e.message) &&
            !/the (memory|pids) controller/.test(e.message),
        );
        const slice = join(root, 'system.slice');
        assert.deepEqual(list(join(root, 'cgroup.subtree_control')), ['memory', 'pids']);
        assert.deepEqual(list(join(slice, 'cgroup.subtree_control')), ['memory', 'pids']);
        assert.ok(
          writes.every((w) => !/ \+\S+ \+/.test(w)),
          'one controller per write',
        );
        writes.length = 0;
        enableControllers(root, ['memory', 'pids'], fakeKernel(writes));
        assert.deepEqual(writes, [], 'nothing is written again once enabled');
      },
    );

    it('refuses a group outside the given root', () => {
      assert.throws(
        () => delegateControllers('/elsewhere/x', ['memory'], root, fakeKernel()),
        (e) => isKeelError(e, 'ECGROUP') && /is not under/.test(e.message),
      );
    });
  });

  describe('processes', () => {
    it('signals every process listed in cgroup.procs, and removes only an empty group', async () => {
      const child = spawn('sleep', ['30'], { stdio: 'ignore' });
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
      const dir = join(root, 'g');
      mkdirSync(dir);
      writeFileSync(join(dir, 'cgroup.procs'), `${child.pid}\n`);
      assert.deepEqual(cgroupProcs(dir), [child.pid]);
      assert.equal(killCgroup(dir, 'SIGTERM'), 1);
      assert.equal(await exited, 'SIGTERM');
      assert.equal(removeCgroup(dir), false, 'a directory with entries is not removed');
      rmSync(join(dir, 'cgroup.procs'));
      assert.equal(removeCgroup(dir), true);
      assert.equal(removeCgroup(dir), true, 'a group already gone counts as removed');
      assert.deepEqual(cgroupProcs(dir), []);
    });
  });
});
