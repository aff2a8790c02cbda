// Host integration, continued: notify, forking, KillMode, credentials, paths, unit-file verbs,
// ordering cycles, the journal's rotation, and reaping at scale.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ContainedInit, testTarget } from './contained-init.js';
import { describeAsRoot } from '../needs.js';

const NOTIFY =
  '/usr/bin/python3 -c "import os,socket,time; s=socket.socket(socket.AF_UNIX, ' +
  `socket.SOCK_DGRAM); time.sleep(0.3); s.sendto(b'STATUS=warming up', ` +
  `os.environ['NOTIFY_SOCKET']); time.sleep(0.3); ` +
  `s.sendto(b'READY=1\\\\nSTATUS=serving', os.environ['NOTIFY_SOCKET']); ` +
  'time.sleep(1000)"';

describeAsRoot('init as PID 1: service types, kill modes, files', function () {
  this.timeout(90_000);
  let init: ContainedInit | undefined;
  afterEach(async () => {
    await init?.stop();
    init = undefined;
  });

  it('Type=notify becomes active on READY=1 and shows STATUS=', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget(),
      'n.service': `[Service]\nType=notify\nExecStart=${NOTIFY}\n`,
    });
    const job = init.ctl('job', { unit: 'n.service', job: 'start' });
    const early = await init.until('n.service', (s) => s.activeState === 'activating');
    assert.equal(early.subState, 'start');
    assert.equal((await job).result, 'done');
    const s = await init.ctl('status', { unit: 'n.service' });
    assert.equal(s.activeState, 'active');
    assert.equal(s.statusText, 'serving');
  });

  it('Type=forking follows the PIDFile and stops the daemon', async () => {
    const dir = '/tmp/keel-fork-' + process.pid;
    init = await ContainedInit.start({
      'test.target': testTarget('f.service'),
      'f.service':
        `[Service]\nType=forking\nPIDFile=${dir}/f.pid\nExecStartPre=/bin/mkdir -p ${dir}\n` +
        `ExecStart=/bin/sh -c "sleep 1000 & echo $! > ${dir}/f.pid"\n`,
    });
    const s = await init.until('f.service', (x) => x.activeState === 'active');
    assert.equal(Number(readFileSync(`${dir}/f.pid`, 'utf8')), s.mainPid);
    assert.equal((await init.ctl('job', { unit: 'f.service', job: 'stop' })).result, 'done');
    await init.until('f.service', (x) => x.activeState === 'inactive');
  });

  for (const [mode, survives] of [
    ['control-group', false],
    ['process', true],
    ['mixed', false],
  ] as const) {
    it(`KillMode=${mode} ${survives ? 'leaves' : 'kills'} the service's other processes`, async () => {
      init = await ContainedInit.start({
        'test.target': testTarget('k.service'),
        'k.service':
          `[Service]\nKillMode=${mode}\nExecStart=/bin/sh -c "sh -c 'trap \\"\\" TERM; ` +
          `exec sleep 1000' & exec sleep 1000"\nTimeoutStopSec=2s\n`,
      });
      await init.until('k.service', (x) => x.activeState === 'active');
      const ns = init.pidNamespace();
      while (termIgnoringSleepers(ns).length === 0) await new Promise((r) => setTimeout(r, 10));
      // The stop job ends when the service is down: what the mode leaves is alive then, the rest is gone.
      await init.ctl('job', { unit: 'k.service', job: 'stop' });
      const left = termIgnoringSleepers(ns);
      assert.equal(
        left.length === 1,
        survives,
        `the helper ${survives ? 'should' : 'should not'} be alive (${left.join(' ')})`,
      );
      for (const pid of left) process.kill(pid, 'SIGKILL');
    });
  }

  it('KillMode=none leaves everything running, and TimeoutStartSec= fails a start that never gets ready', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget(),
      'none.service': '[Service]\nKillMode=none\nExecStart=/bin/sleep 1000\n',
      'slow.service': '[Service]\nType=notify\nTimeoutStartSec=1s\nTimeoutStopSec=1s\nExecStart=/bin/sleep 1000\n',
    });
    const s = await (async () => {
      await init!.ctl('job', { unit: 'none.service', job: 'start' });
      return init!.ctl('status', { unit: 'none.service' });
    })();
    await init.ctl('job', { unit: 'none.service', job: 'stop' });
    let alive = true;
    try {
      process.kill(hostPidOf(s.mainPid), 0);
    } catch {
      alive = false;
    }
    assert.equal(alive, true, 'KillMode=none must not kill the process');
    const r = await init.ctl('job', { unit: 'slow.service', job: 'start' });
    assert.equal(r.result, 'failed');
    const slow = await init.ctl('status', { unit: 'slow.service' });
    assert.equal(slow.activeState, 'failed');
    assert.equal(slow.result, 'timeout');
  });

  it('mounts and unmounts a .mount unit', async () => {
    const where = `/tmp/keel-mnt-${process.pid}`;
    const name = `${where.slice(1).replace(/-/g, '\\x2d').replace(/\//g, '-')}.mount`;
    init = await ContainedInit.start({
      'test.target': testTarget(),
      [name]: `[Mount]\nWhat=tmpfs\nWhere=${where}\nType=tmpfs\nOptions=size=1m,mode=0700\n`,
    });
    assert.equal((await init.ctl('job', { unit: name, job: 'start' })).result, 'done');
    const st = await init.ctl('status', { unit: name });
    assert.equal(st.subState, 'mounted');
    assert.equal((await init.ctl('job', { unit: name, job: 'stop' })).result, 'done');
    assert.equal((await init.ctl('status', { unit: name })).activeState, 'inactive');
  });

  it('applies Environment=, EnvironmentFile=, WorkingDirectory= and User=', async () => {
    const envFile = '/tmp/keel-envfile-' + process.pid;
    writeFileSync(envFile, '# comment\nFROM_FILE="two words"\n');
    init = await ContainedInit.start({
      'test.target': testTarget('e.service'),
      'e.service':
        `[Service]\nType=oneshot\nEnvironment="A=1" B=x\nEnvironmentFile=${envFile}\n` +
        'EnvironmentFile=-/nonexistent\nWorkingDirectory=/tmp\nUser=nobody\n' +
        `ExecStart=/bin/sh -c 'echo "$A $B [$FROM_FILE] $(pwd) $(id -u)"'\n` +
        `ExecStart=/bin/echo $FROM_FILE\nExecStart=/bin/echo \${FROM_FILE}\n`,
    });
    const s = await init.until('e.service', (x) => x.logs.some((e: any) => e.message.startsWith('1 x')));
    const lines = s.logs.map((e: any) => e.message);
    assert.ok(lines.includes('1 x [two words] /tmp 65534'), lines.join('\n'));
    assert.ok(lines.includes('two words'));
  });

  it('starts a unit from a .path unit when the file appears', async () => {
    const watched = `/tmp/keel-path-${process.pid}/trigger`;
    mkdirSync(join(watched, '..'), { recursive: true });
    init = await ContainedInit.start({
      'test.target': testTarget('w.path'),
      'w.path': `[Path]\nPathExists=${watched}\n`,
      'w.service': '[Service]\nType=oneshot\nExecStart=/bin/echo triggered\n',
    });
    await init.until('w.path', (s) => s.activeState === 'active');
    writeFileSync(watched, 'x');
    await init.until('w.service', (s) => s.logs.some((e: any) => e.message === 'triggered'));
  });

  it('enable, disable, mask and unmask through the keel command', async () => {
    init = await ContainedInit.start({ 'test.target': testTarget() });
    // A vendor unit (in /usr/lib): masking puts a /dev/null link in /etc, which wins.
    writeFileSync(
      join(init.dir, 'usr/lib/systemd/system/svc.service'),
      '[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=test.target\nAlias=other.service\n',
    );
    assert.equal(init.keel('daemon-reload').code, 0);
    const en = init.keel('enable', 'svc.service');
    assert.equal(en.code, 0, en.stderr);
    assert.match(en.stderr, /Created symlink .*test\.target\.wants\/svc\.service/);
    assert.equal(init.keel('is-enabled', 'svc.service').stdout.trim(), 'enabled');
    assert.ok(existsSync(join(init.unitDir, 'other.service')));
    assert.equal(init.keel('disable', 'svc.service').code, 0);
    assert.equal(init.keel('is-enabled', 'svc.service').stdout.trim(), 'disabled');
    assert.equal(init.keel('mask', 'svc.service').code, 0);
    assert.equal(init.keel('is-enabled', 'svc.service').stdout.trim(), 'masked');
    const st = init.keel('start', 'svc.service');
    assert.notEqual(st.code, 0);
    assert.match(st.stderr, /failed/);
    assert.equal(init.keel('unmask', 'svc.service').code, 0);
    assert.equal(init.keel('start', 'svc.service').code, 0);
    assert.equal(init.keel('is-active', 'svc.service').code, 0);
  });

  it('breaks an ordering cycle through a wanted unit and still boots', async () => {
    init = await ContainedInit.start({
      'test.target': '[Unit]\nRequires=a.service\nAfter=a.service\n',
      'a.service': '[Unit]\nAfter=b.service\nWants=b.service\n[Service]\nExecStart=/bin/sleep 1000\n',
      'b.service': '[Unit]\nAfter=a.service\n[Service]\nExecStart=/bin/sleep 1000\n',
    });
    assert.match(init.output, /ordering cycle/i);
    assert.equal((await init.ctl('status', { unit: 'a.service' })).activeState, 'active');
    assert.equal((await init.ctl('status', { unit: 'test.target' })).activeState, 'active');
  });

  it('rotates the journal files by size and still answers queries', async () => {
    init = await ContainedInit.start(
      {
        'test.target': testTarget('chatty.service'),
        'chatty.service':
          '[Service]\nType=oneshot\nExecStart=/bin/sh -c "i=0; while [ $i -lt ' +
          '3000 ]; do echo ' +
          'line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; ' +
          'i=$((i+1)); done"\n',
      },
      { env: { KEEL_JOURNAL_MAX_BYTES: '65536' } },
    );
    await init.until('chatty.service', (s) => s.activeState === 'inactive' && s.result === 'success');
    const files = readdirSync(join(init.dir, 'var/log/keel'));
    assert.ok(files.includes('journal.jsonl.1'), files.join(' '));
    const last = await init.ctl('logs', { unit: 'chatty.service', lines: 5 });
    assert.ok(
      last.some((e: any) => /^line-2999-/.test(e.message)),
      JSON.stringify(last),
    );
    // The first lines are only in the rotated file now, and a full query still finds them.
    const all = await init.ctl('logs', { unit: 'chatty.service' });
    assert.ok(all.some((e: any) => /^line-0-/.test(e.message)));
  });

  it('reaps 100 orphaned grandchildren and delivers 200 simultaneous exits to their units', async () => {
    const units: Record<string, string> = { 'test.target': testTarget('orphans.service') };
    units['orphans.service'] =
      '[Service]\nType=oneshot\nExecStart=/bin/sh -c "for i in $(seq 100); do sh -c \'sleep 0.5 &\'; done"\n';
    for (let i = 0; i < 200; i++)
      units[`x${i}.service`] = `[Service]\nType=oneshot\nExecStart=/bin/sh -c "sleep 1; exit ${i % 7 === 0 ? 3 : 0}"\n`;
    units['many.target'] = testTarget(...Array.from({ length: 200 }, (_, i) => `x${i}.service`));
    init = await ContainedInit.start(units);
    await init.until('orphans.service', (s) => s.activeState === 'inactive' && s.result === 'success');
    await init.ctl('job', { unit: 'many.target', job: 'start' });
    for (let i = 0; i < 200; i++) {
      const s = await init.ctl('status', { unit: `x${i}.service`, lines: 0 });
      assert.equal(s.activeState, i % 7 === 0 ? 'failed' : 'inactive', `x${i}`);
    }
    // No zombie left in the namespace: no process of it is in state Z once the orphans are reaped.
    const ps = await init.ctl('status', { unit: 'orphans.service', lines: 0 });
    assert.equal(ps.result, 'success');
    assert.equal(countZombies(init), 0);
  });
});

/** The host pid of a process known by its pid inside the init's namespace. */
function hostPidOf(nsPid: number): number {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let status = '';
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const m = /^NSpid:\s+(\d+)\s+(\d+)$/m.exec(status);
    if (m && Number(m[2]) === nsPid && /^Name:\s+sleep/m.test(status)) return Number(m[1]);
  }
  throw new Error(`no process with namespace pid ${nsPid}`);
}

/** Host pids of the running (not zombie) `sleep`s of pid namespace `ns` that ignore SIGTERM. */
function termIgnoringSleepers(ns: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let status = '';
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const ign = /^SigIgn:\s+([0-9a-f]+)$/m.exec(status);
    if (!/^Name:\s+sleep$/m.test(status) || /^State:\s+Z/m.test(status) || !ign || !(BigInt(`0x${ign[1]}`) & 0x4000n))
      continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/pid`) === ns) out.push(Number(pid));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Zombies among the processes of the init's pid namespace, seen from the host's /proc. */
function countZombies(init: ContainedInit): number {
  const ns = init.pidNamespace();
  let n = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let status = '';
    try {
      status = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      continue;
    }
    if (!/^State:\s+Z/m.test(status)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/pid`) === ns) n++;
    } catch {
      /* gone */
    }
  }
  return n;
}
