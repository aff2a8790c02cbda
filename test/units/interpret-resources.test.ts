// The cgroup v1 resource names systemd 252 maps onto v2, OOMScoreAdjust=, Delegate=, and the
// StartLimit*= it still reads in [Service]: interpreted, not "unsupported".
import assert from 'node:assert/strict';
import { interpretUnit } from '../../units/interpret.js';
import { parseUnitText } from '../../units/parse.js';
import { blkioWeightToIo, cpuSharesToWeight, limitFiles } from '../../init/cgroup.js';

const HOST = { hostname: 'node1', machineId: 'm1', bootId: 'b1', runtimeDir: '/run' };
const unit = (text: string) =>
  interpretUnit(parseUnitText(text, '/u/a.service').assignments, {
    ...HOST,
    unitName: 'a.service',
    fragmentPath: '/u/a.service',
  });

describe('units/interpret-resources', () => {
  it('reads MemoryLimit=, CPUShares=, StartupCPUShares=, BlockIOWeight=, OOMScoreAdjust= and Delegate=', () => {
    const u = unit(
      '[Service]\nExecStart=/bin/a\nMemoryLimit=512M\nCPUShares=2048\nStartupCPUShares=4096\nBlockIOWeight=250\n' +
        'OOMScoreAdjust=-500\nDelegate=cpu memory\nDelegate=pids\n',
    );
    assert.deepEqual(u.diagnostics, []);
    const s = u.service!;
    assert.deepEqual(
      [s.memoryLimit, s.cpuShares, s.startupCpuShares, s.blockIOWeight, s.oomScoreAdjust, s.delegate],
      [512 * 2 ** 20, 2048, 4096, 250, -500, ['cpu', 'memory', 'pids']],
    );
    assert.equal(unit('[Service]\nExecStart=/bin/a\nDelegate=yes\n').service!.delegate, 'all');
    assert.equal(unit('[Service]\nExecStart=/bin/a\nDelegate=\n').service!.delegate, 'all');
    assert.equal(unit('[Service]\nExecStart=/bin/a\nDelegate=yes\nDelegate=no\n').service!.delegate, undefined);
    assert.equal(unit('[Service]\nExecStart=/bin/a\nMemoryLimit=10%\n').service!.memoryLimitPercent, 10);
  });

  it('reports out-of-range values with file and line, keeping the default', () => {
    const u = unit(
      '[Service]\nExecStart=/bin/a\nCPUShares=1\nBlockIOWeight=5000\nOOMScoreAdjust=1001\nDelegate=cpu bogus\n',
    );
    assert.deepEqual(
      u.diagnostics.map((d) => [d.line, d.severity]),
      [
        [3, 'error'],
        [4, 'error'],
        [5, 'error'],
        [6, 'error'],
      ],
    );
    assert.deepEqual(
      [u.service!.cpuShares, u.service!.blockIOWeight, u.service!.oomScoreAdjust, u.service!.delegate],
      [undefined, undefined, undefined, ['cpu']],
    );
  });

  it(
    'StartLimitInterval= and StartLimitBurst= in [Service] were unknown ' +
      'keys: they set the start limit, as in systemd',
    () => {
      const u = unit('[Service]\nExecStart=/bin/a\nStartLimitInterval=30s\nStartLimitBurst=2\n');
      assert.deepEqual(u.diagnostics, []);
      assert.deepEqual([u.startLimitIntervalMs, u.startLimitBurst], [30_000, 2]);
    },
  );

  it("maps them onto cgroup v2 files with systemd's conversions; MemoryMax= wins over MemoryLimit=", () => {
    assert.deepEqual(
      [cpuSharesToWeight(1024), cpuSharesToWeight(2), cpuSharesToWeight(262_144), cpuSharesToWeight(100)],
      [100, 1, 10_000, 9],
    );
    assert.deepEqual([blkioWeightToIo(500), blkioWeightToIo(10), blkioWeightToIo(1000)], [100, 2, 200]);
    assert.deepEqual(
      limitFiles({
        memoryMax: null,
        cpuQuota: null,
        tasksMax: null,
        memoryLimit: 1 << 20,
        cpuShares: 512,
        blockIOWeight: 1000,
      }),
      [
        ['memory.max', '1048576'],
        ['cpu.weight', '50'],
        ['io.weight', 'default 200'],
      ],
    );
    assert.deepEqual(limitFiles({ memoryMax: 4096, cpuQuota: null, tasksMax: null, memoryLimit: 1 << 20 }), [
      ['memory.max', '4096'],
    ]);
  });
});

describe('units: directives still unsupported', () => {
  it('warn with file and line, as keel analyze verify prints them', () => {
    const u = unit('[Service]\nExecStart=/bin/a\nIOWeight=200\nOOMScoreAdjust=10\n');
    assert.deepEqual(u.diagnostics, [
      { file: '/u/a.service', line: 3, severity: 'warning', message: 'IOWeight= is unsupported by keel, ignoring.' },
    ]);
  });
});
