// Host integration: services with a mount namespace of their own (PrivateTmp=, ProtectSystem=,
// ProtectHome=, PrivateDevices=, NoNewPrivileges=), started by a contained init as PID 1.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainedInit, testTarget } from './contained-init.js';
import { describeAsRoot } from '../needs.js';

/** Where a sandbox of these tests could leak a mount to: the paths the plans act on, and this run's own. */
const SANDBOX_POINTS = new Set([
  '/',
  '/tmp',
  '/var/tmp',
  '/dev',
  '/proc',
  '/sys',
  '/usr',
  '/boot',
  '/efi',
  '/etc',
  '/home',
]);
for (const p of ['/root', '/run/user']) SANDBOX_POINTS.add(p);
/** Those lines of /proc/self/mounts (other engineers' tests may mount elsewhere on this host meanwhile). */
const mounts = () =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter((l) => {
      const point = l.split(' ')[1] ?? '';
      return SANDBOX_POINTS.has(point) || point.startsWith('/dev/') || point.includes(String(process.pid));
    })
    .join('\n');
const messages = (s: { logs: { message: string }[] }) => s.logs.map((e) => e.message);

describeAsRoot('init: service sandboxing with mount namespaces (real services)', function () {
  this.timeout(60_000);
  let init: ContainedInit | undefined;
  let before = '';
  beforeEach(() => {
    before = mounts();
  });
  afterEach(async () => {
    await init?.stop();
    init = undefined;
    assert.equal(mounts(), before, 'the test left /proc/self/mounts as it found it');
  });

  it('PrivateTmp=yes: the service sees an empty /tmp and /var/tmp, and its files stay off the host /tmp', async () => {
    const marker = `keel-ptmp-${process.pid}`;
    assert.ok(readdirSync('/tmp').length > 0, 'prerequisite: the host /tmp is not empty');
    init = await ContainedInit.start({
      'test.target': testTarget('p.service'),
      'p.service':
        `[Service]\nPrivateTmp=yes\nExecStart=/bin/sh -c 'echo "tmp=$(ls -A /tmp | wc -l) ` +
        `var=$(ls -A /var/tmp | wc -l)"; echo hi > /tmp/${marker}; echo written; exec sleep 1000'\n`,
    });
    const s = await init.until('p.service', (x) => messages(x).includes('written'));
    assert.ok(messages(s).includes('tmp=0 var=0'), JSON.stringify(messages(s)));
    assert.equal(existsSync(`/tmp/${marker}`), false, 'the file is not in the host /tmp');
    const priv = readdirSync('/tmp').filter((d) => d.startsWith('systemd-private-p.service-'));
    const holder = priv.find((d) => existsSync(join('/tmp', d, 'tmp', marker)));
    assert.ok(holder, `the file is in the unit's private directory (${priv.join(', ')})`);
    assert.equal(statSync(join('/tmp', holder!, 'tmp')).mode & 0o7777, 0o1777);
    assert.equal((await init.ctl('job', { unit: 'p.service', job: 'stop' })).result, 'done');
    assert.equal(existsSync(join('/tmp', holder!)), false, 'the private directory is removed when the service stops');
  });

  it('ProtectSystem=strict: the service cannot write /etc or /tmp but can write its ReadWritePaths=', async () => {
    const rw = `/tmp/keel-rw-${process.pid}`;
    mkdirSync(rw, { recursive: true });
    try {
      init = await ContainedInit.start({
        'test.target': testTarget('s.service'),
        's.service':
          '[Service]\nType=oneshot\nRemainAfterExit=yes\nProtectSystem=strict\n' +
          `ReadWritePaths=${rw} -/nonexistent-${process.pid}\n` +
          `ExecStart=/bin/sh -c 'touch /etc/keel-strict-${process.pid} ` +
          '2>/dev/null && echo etc=writable || echo etc=read-only; ' +
          `touch /tmp/keel-strict-${process.pid} 2>/dev/null && echo tmp=writable || ` +
          `echo tmp=read-only; echo ok > ${rw}/f && echo rw=ok; ` +
          `echo > /dev/null && echo dev=ok'\n`,
      });
      const s = await init.until('s.service', (x) => x.activeState === 'active' || x.activeState === 'failed');
      assert.deepEqual(
        messages(s).filter((m) => /^\w+=/.test(m)),
        ['etc=read-only', 'tmp=read-only', 'rw=ok', 'dev=ok'],
      );
      assert.equal(readFileSync(`${rw}/f`, 'utf8'), 'ok\n');
      assert.equal(existsSync(`/etc/keel-strict-${process.pid}`), false);
    } finally {
      rmSync(rw, { recursive: true, force: true });
    }
  });

  it(
    'ProtectSystem=yes: /usr is read-only, /etc stays writable; a missing ' +
      'ReadOnlyPaths= path fails the start naming it',
    async () => {
      const f = `/etc/keel-psyes-${process.pid}`;
      try {
        init = await ContainedInit.start({
          'test.target': testTarget('y.service'),
          'y.service':
            '[Service]\nType=oneshot\nProtectSystem=yes\n' +
            `ExecStart=/bin/sh -c 'touch /usr/keel-${process.pid} 2>/dev/null && echo ` +
            `usr=writable || echo usr=read-only; touch ${f} && echo etc=writable'\n`,
          'bad.service': `[Service]\nType=oneshot\nReadOnlyPaths=/nonexistent-${process.pid}\nExecStart=/bin/true\n`,
        });
        const s = await init.until('y.service', (x) => messages(x).some((m) => m.startsWith('etc=')));
        assert.deepEqual(
          messages(s).filter((m) => /^\w+=/.test(m)),
          ['usr=read-only', 'etc=writable'],
        );
        assert.equal((await init.ctl('job', { unit: 'bad.service', job: 'start' })).result, 'failed');
        const bad = await init.ctl('status', { unit: 'bad.service', lines: 20 });
        assert.ok(
          messages(bad).some((m) =>
            m.includes(`mount(/nonexistent-${process.pid}, /nonexistent-${process.pid}, MS_BIND|MS_REC): ENOENT`),
          ),
          JSON.stringify(messages(bad)),
        );
      } finally {
        rmSync(f, { force: true });
      }
    },
  );

  it('ProtectHome=yes hides /root; ProtectHome=read-only keeps it visible but read-only', async () => {
    const marker = `/root/.keel-home-${process.pid}`;
    writeFileSync(marker, 'x');
    try {
      init = await ContainedInit.start({
        'test.target': testTarget('h.service', 'r.service'),
        'h.service':
          '[Service]\nType=oneshot\nProtectHome=yes\n' +
          `ExecStart=/bin/sh -c 'echo "root=$(ls -A /root | wc -l)"; test -e ${marker} || ` +
          `echo marker=hidden'\n`,
        'r.service':
          '[Service]\nType=oneshot\nProtectHome=read-only\n' +
          `ExecStart=/bin/sh -c 'test -e ${marker} && echo marker=visible; rm -f ${marker} ` +
          `2>/dev/null || echo rm=refused'\n`,
      });
      const h = await init.until('h.service', (x) => messages(x).some((m) => m.startsWith('marker=')));
      assert.deepEqual(
        messages(h).filter((m) => /^\w+=/.test(m)),
        ['root=0', 'marker=hidden'],
      );
      const r = await init.until('r.service', (x) => messages(x).some((m) => m.startsWith('rm=')));
      assert.deepEqual(
        messages(r).filter((m) => /^\w+=/.test(m)),
        ['marker=visible', 'rm=refused'],
      );
      assert.ok(existsSync(marker));
    } finally {
      rmSync(marker, { force: true });
    }
  });

  it(
    'ProtectSystem=strict with PrivateTmp= keeps the private /tmp writable; ' +
      'InaccessiblePaths= empties a directory and a file',
    async () => {
      const [dir, file] = [`/opt/keel-secret-${process.pid}`, `/opt/keel-secret-${process.pid}.txt`];
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'inside'), 'x');
      writeFileSync(file, 'secret');
      try {
        init = await ContainedInit.start({
          'test.target': testTarget('c.service'),
          'c.service':
            '[Service]\nType=oneshot\nProtectSystem=strict\nPrivateTmp=yes\n' +
            `InaccessiblePaths=${dir} ${file} -/nonexistent-${process.pid}\n` +
            `ExecStart=/bin/sh -c 'echo x > /tmp/t && echo tmp=writable; touch ` +
            `/opt/x-${process.pid} 2>/dev/null || echo opt=read-only; ` +
            `echo "dir=$(ls -A ${dir} | wc -l) file=$(cat ${file} | wc -c)"'\n`,
        });
        const s = await init.until('c.service', (x) => messages(x).some((m) => m.startsWith('dir=')));
        assert.deepEqual(
          messages(s).filter((m) => /^\w+=/.test(m)),
          ['tmp=writable', 'opt=read-only', 'dir=0 file=0'],
        );
        assert.equal(readFileSync(file, 'utf8'), 'secret', 'the host file is untouched');
      } finally {
        rmSync(dir, { recursive: true, force: true });
        rmSync(file, { force: true });
      }
    },
  );

  it('NoNewPrivileges=yes shows NoNewPrivs: 1 in /proc/self/status', async () => {
    init = await ContainedInit.start({
      'test.target': testTarget('n.service', 'plain.service'),
      'n.service': '[Service]\nType=oneshot\nNoNewPrivileges=yes\nExecStart=/bin/grep NoNewPrivs /proc/self/status\n',
      'plain.service': '[Service]\nType=oneshot\nExecStart=/bin/grep NoNewPrivs /proc/self/status\n',
    });
    const n = await init.until('n.service', (x) => messages(x).some((m) => m.startsWith('NoNewPrivs')));
    assert.ok(messages(n).includes('NoNewPrivs:\t1'), JSON.stringify(messages(n)));
    const p = await init.until('plain.service', (x) => messages(x).some((m) => m.startsWith('NoNewPrivs')));
    assert.ok(messages(p).includes('NoNewPrivs:\t0'), JSON.stringify(messages(p)));
  });

  it('PrivateDevices=yes: a minimal /dev without block devices, and no CAP_MKNOD or CAP_SYS_RAWIO', async () => {
    const hostBlock = readdirSync('/dev').filter((n) => {
      try {
        return statSync(join('/dev', n)).isBlockDevice();
      } catch {
        return false;
      }
    });
    assert.ok(hostBlock.length > 0, 'prerequisite: the host /dev has a block device (loop0, vda, sda, ...)');
    init = await ContainedInit.start({
      'test.target': testTarget('d.service'),
      'd.service':
        '[Service]\nType=oneshot\nPrivateDevices=yes\n' +
        'ExecStart=/bin/sh -c \'for f in /dev/* /dev/*/*; do [ -b "$f" ] && echo ' +
        '"block=$f"; done; ' +
        'echo "dev=$(ls /dev | tr "\\n" " ")"; head -c 4 /dev/urandom | wc -c; echo x > ' +
        "/dev/null && echo null=ok; grep CapBnd /proc/self/status'\n",
    });
    const d = await init.until('d.service', (x) => messages(x).some((m) => m.startsWith('CapBnd')));
    const m = messages(d);
    assert.deepEqual(
      m.filter((x) => x.startsWith('block=')),
      [],
      'no block devices',
    );
    const dev = m
      .find((x) => x.startsWith('dev='))!
      .slice(4)
      .trim()
      .split(' ');
    for (const n of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'fd', 'stdin'])
      assert.ok(dev.includes(n), `/dev/${n} in ${dev.join(' ')}`);
    assert.ok(!dev.some((n) => hostBlock.includes(n)), `none of ${hostBlock.join(' ')} in ${dev.join(' ')}`);
    assert.ok(m.includes('4') && m.includes('null=ok'), JSON.stringify(m));
    const bnd = BigInt(`0x${m.find((x) => x.startsWith('CapBnd'))!.split(/\s+/)[1]}`);
    assert.equal(bnd & (1n << 27n), 0n, 'CAP_MKNOD dropped');
    assert.equal(bnd & (1n << 17n), 0n, 'CAP_SYS_RAWIO dropped');
    assert.notEqual(bnd & (1n << 21n), 0n, 'CAP_SYS_ADMIN kept');
  });
});
