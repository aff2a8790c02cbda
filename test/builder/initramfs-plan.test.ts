// The initramfs /init: syntax-checked by real shells, step order, and its shell logic run for real
// (find_part against a fake sysfs tree, the ext4-magic check against real images).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { earlyBootPlan, renderInitScript, stepToShell } from '../../builder/initramfs-plan.js';

const INIT = ['/usr/bin/node', '--disable-sigusr1', '/usr/lib/keel/init.mjs'];
const MODULES = ['virtio_pci', 'virtio_blk', 'squashfs', 'overlay'];
const script = () => renderInitScript(earlyBootPlan({ modules: MODULES, init: INIT }));

function findTool(name: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      /* next */
    }
  }
  return null;
}

/** Replaces `from` in `text`, failing if it is not there (so a changed source cannot pass silently). */
function swap(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  assert.notEqual(out, text, `${from} not found in the rendered script`);
  return out;
}

/** Runs `body` with /bin/sh; returns status and output. */
function sh(body: string, env: Record<string, string> = {}) {
  const r = spawnSync('/bin/sh', ['-c', body], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The find_part function exactly as rendered. */
function findPartFunction(): string {
  const m = /^find_part\(\) \{\n[\s\S]*?\n\}\n/m.exec(renderInitScript([]));
  assert.ok(m, 'find_part not in the prelude');
  return m[0];
}

describe('builder/initramfs-plan', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-initplan-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('renders a script /bin/sh -n accepts (and sh -n catches a broken one)', () => {
    const file = join(dir, 'init');
    writeFileSync(file, script());
    const ok = spawnSync('/bin/sh', ['-n', file], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    writeFileSync(file, script() + 'if true; then\n');
    assert.notEqual(spawnSync('/bin/sh', ['-n', file]).status, 0, 'sh -n must reject an unterminated if');
  });

  it('renders a script busybox sh (the initramfs shell) accepts', function () {
    const busybox = findTool('busybox');
    assert.ok(busybox, 'busybox missing: run make deps (busybox-static)');
    const file = join(dir, 'init');
    writeFileSync(file, script());
    const r = spawnSync(busybox!, ['sh', '-n', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('starts with a shebang and loads the modules before looking for partitions', () => {
    const lines = script().split('\n');
    assert.equal(lines[0], '#!/bin/sh');
    const probes = lines.filter((l) => l.startsWith('modprobe '));
    assert.deepEqual(
      probes,
      MODULES.map((m) => `modprobe -q ${m}`),
    );
    const firstFind = lines.findIndex((l) => l.includes('$(find_part '));
    assert.ok(lines.indexOf(`modprobe -q ${MODULES.at(-1)}`) < firstFind);
  });

  it('mounts USR read-only before ROOT, and makes ext4 only after USR is there', () => {
    const lines = script().split('\n');
    const usr = lines.findIndex((l) => l.includes('mount -t squashfs -o ro $USR_DEV /sysroot ||'));
    const mkfs = lines.findIndex((l) => l.includes('chroot /sysroot /usr/sbin/mkfs.ext4'));
    const root = lines.findIndex((l) => / mount -t ext4 -o rw[^ ]* \$ROOT_DEV \/sysroot\/var \|\|/.test(l));
    assert.ok(usr >= 0 && mkfs >= 0 && root >= 0, `usr=${usr} mkfs=${mkfs} root=${root}`);
    assert.ok(usr < mkfs && mkfs < root, `usr=${usr} mkfs=${mkfs} root=${root}`);
    assert.match(script(), /^USR_DEV=\$\(find_part "\$USR_LABEL"\) \|\| fatal/m);
    assert.match(script(), /^ROOT_DEV=\$\(find_part "ROOT"\) \|\| fatal/m);
  });

  it('mounts the /etc overlay from inside the new root, with layers on ROOT', () => {
    const lines = script().split('\n');
    const overlay = lines.findIndex((l) => l.includes('-t overlay'));
    assert.equal(
      lines[overlay],
      'chroot /sysroot /bin/mount -t overlay -o ' +
        'lowerdir=/etc,upperdir=/var/lib/keel/overlay/etc/upper,workdir=/var/lib/keel/overlay/etc/work ' +
        'overlay /etc || fatal "cannot mount overlay on /etc"',
    );
    const root = lines.findIndex((l) => l.includes('$ROOT_DEV /sysroot/var ||'));
    const upper = lines.indexOf(
      'mkdir -p /sysroot/var/lib/keel/overlay/etc/upper || fatal "cannot ' +
        'create /sysroot/var/lib/keel/overlay/etc/upper"',
    );
    const work = lines.indexOf(
      'mkdir -p /sysroot/var/lib/keel/overlay/etc/work || fatal "cannot create /sysroot/var/lib/keel/overlay/etc/work"',
    );
    assert.ok(
      root < upper && upper < overlay && work < overlay,
      `root=${root} upper=${upper} work=${work} overlay=${overlay}`,
    );
  });

  it('ends by moving /proc and /sys and exec-ing switch_root to the given init', () => {
    const lines = script().trimEnd().split('\n');
    assert.deepEqual(lines.slice(-5), [
      'mount --move /proc /sysroot/proc || fatal "cannot move /proc"',
      'mount --move /sys /sysroot/sys || fatal "cannot move /sys"',
      'umount -l /dev 2>/dev/null',
      'exec switch_root /sysroot /usr/bin/node --disable-sigusr1 /usr/lib/keel/init.mjs',
      'fatal "cannot switch root"',
    ]);
    assert.equal(lines.filter((l) => l.includes('switch_root')).length, 1);
  });

  it('marks every mount of the plan fatal, except the optional OEM partition', () => {
    for (const s of earlyBootPlan({ modules: [], init: INIT })) {
      if (s.kind !== 'mount') continue;
      if (s.where === '/sysroot/usr/share/oem') {
        // An image without OEM still boots: the mount is tried only when the partition exists.
        assert.match(stepToShell(s), /^if \[ -n "\$OEM_DEV" \]; then mount -t ext4 -o ro/);
        assert.doesNotMatch(stepToShell(s), /fatal/);
      } else assert.match(stepToShell(s), / \|\| fatal "cannot mount /, s.where);
    }
  });

  it('reads the command line once /proc is mounted, before any slot step', () => {
    const plan = earlyBootPlan({ modules: MODULES, init: INIT });
    const at = (pred: (st: (typeof plan)[number]) => boolean) => plan.findIndex(pred);
    const proc = at((st) => st.kind === 'mount' && st.where === '/proc');
    const read = at((st) => st.kind === 'read-cmdline');
    assert.ok(proc >= 0 && read > proc, `read-cmdline (${read}) must come after the /proc mount (${proc})`);
    assert.ok(read < at((st) => st.kind === 'find-part') && read < at((st) => st.kind === 'verity'));
  });

  it('takes the slot, its root hash and the trial flag from the command line', () => {
    const cmdline = join(dir, 'cmdline');
    const body =
      swap(stepToShell({ kind: 'read-cmdline' }), '/proc/cmdline', cmdline) +
      '\necho "$USR_LABEL|$USR_HASH|$USR_VERIFY"';
    writeFileSync(
      cmdline,
      'BOOT_IMAGE=/boot/vmlinuz keel.usr=USR-B keel.slot=B ' +
        `keel.verity=${'ab'.repeat(32)} keel.verify=full console=ttyS0,115200\n`,
    );
    assert.equal(sh(body).stdout, `USR-B|${'ab'.repeat(32)}|full\n`);
    writeFileSync(cmdline, 'console=ttyS0,115200 quiet\n');
    assert.equal(sh(body).stdout, 'USR-A||\n');
  });

  describe('the dm-verity step (keel-verity faked on PATH)', () => {
    const verityStep = () => stepToShell({ kind: 'verity', variable: 'USR_DEV' });
    /** Runs the step with a fake keel-verity that logs its arguments and prints DEV. */
    function run(vars: string, fake: { exit: number; dev?: string }) {
      const bin = join(dir, 'bin');
      mkdirSync(bin, { recursive: true });
      const dev = fake.dev ?? join(dir, 'dm-0');
      writeFileSync(
        join(bin, 'keel-verity'),
        `#!/bin/sh\necho "$@" > ${join(dir, 'args')}\necho ${dev}\nexit ${fake.exit}\n`,
        { mode: 0o755 },
      );
      const body =
        `fatal() { echo "FATAL: $*"; exit 9; }\n${vars}\nUSR_DEV=/dev/vda3\nUSR_LABEL=USR-B\n` +
        `${verityStep().replace(/>\/dev\/console/g, '')}\necho "dev=$USR_DEV"`;
      return sh(body, { PATH: `${bin}:${process.env.PATH}` });
    }

    it('opens USR through keel-verity with the root hash and mounts what it returns', () => {
      const r = run(`USR_HASH=${'cd'.repeat(32)}`, { exit: 0 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`dev=${join(dir, 'dm-0')}`));
      assert.match(sh(`cat ${join(dir, 'args')}`).stdout, new RegExp(`^open /dev/vda3 ${'cd'.repeat(32)} usr`));
    });

    it('refuses to boot without a root hash, or when keel-verity fails', () => {
      assert.match(run('USR_HASH=', { exit: 0 }).stdout, /FATAL: no dm-verity root hash for USR-B/);
      assert.match(
        run(`USR_HASH=${'cd'.repeat(32)}`, { exit: 1 }).stdout,
        /FATAL: cannot open USR-B through dm-verity/,
      );
    });

    it('reads all of USR on a trial boot and refuses a slot that does not read back', () => {
      writeFileSync(join(dir, 'dm-0'), 'fine');
      assert.equal(run(`USR_HASH=${'cd'.repeat(32)}\nUSR_VERIFY=full`, { exit: 0 }).status, 0);
      // A device that cannot be read (EIO from dm-verity in the real boot): here, a missing file.
      const r = run(`USR_HASH=${'cd'.repeat(32)}\nUSR_VERIFY=full`, { exit: 0, dev: join(dir, 'missing') });
      assert.match(r.stdout, /FATAL: USR-B does not match its dm-verity root hash/);
    });

    it('with keel.verity=off uses the partition as it is, and says so', () => {
      const r = run('USR_HASH=off', { exit: 1 });
      assert.equal(r.status, 0);
      assert.match(r.stdout, /dev=\/dev\/vda3/);
    });
  });

  describe('find_part against a fake /sys/class/block', () => {
    const uevent = (dev: string, extra: string) => `MAJOR=254\nMINOR=3\nDEVNAME=${dev}\nDEVTYPE=partition\n${extra}`;
    function addBlock(dev: string, content: string): void {
      mkdirSync(join(dir, 'class/block', dev), { recursive: true });
      writeFileSync(join(dir, 'class/block', dev, 'uevent'), content);
    }
    const fn = (tries?: number) => {
      const text = swap(findPartFunction(), '/sys/class/block/', `${dir}/class/block/`);
      return tries === undefined ? text : swap(text, '-lt "${2:-200}"', `-lt ${tries}`);
    };

    beforeEach(() => {
      addBlock('vda', 'MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\nDISKSEQ=9\n');
      addBlock('vda1', uevent('vda1', 'PARTN=1\nPARTNAME=EFI-SYSTEM\n'));
      addBlock('vda3', uevent('vda3', 'PARTN=3\nPARTNAME=USR-A\n'));
      addBlock('vda4', uevent('vda4', 'PARTN=4\nPARTNAME=USR-B\n'));
      addBlock('vda9', uevent('vda9', 'PARTN=9\nPARTNAME=ROOT\n'));
      // A longer name that contains a wanted one must not match.
      addBlock('vdb1', uevent('vdb1', 'PARTN=1\nPARTNAME=ROOT-OLD\n'));
    });

    it('prints the device node of the partition with that exact GPT name', () => {
      assert.deepEqual(sh(`${fn()}find_part USR-A`), { status: 0, stdout: '/dev/vda3\n', stderr: '' });
      assert.equal(sh(`${fn()}find_part USR-B`).stdout, '/dev/vda4\n');
      assert.equal(sh(`${fn()}find_part ROOT`).stdout, '/dev/vda9\n');
    });

    it('fails with no output when no partition has the name', () => {
      const r = sh(`${fn(3)}find_part USR-C`);
      assert.equal(r.status, 1);
      assert.equal(r.stdout, '');
    });

    it('waits for a partition that appears later', async () => {
      const child = new Promise<string>((res, rej) =>
        execFile('/bin/sh', ['-c', `${fn()}find_part DATA`], { timeout: 8000 }, (err, out) =>
          err ? rej(err) : res(out),
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      addBlock('vdc1', uevent('vdc1', 'PARTN=1\nPARTNAME=DATA\n'));
      assert.equal(await child, '/dev/vdc1\n');
    });
  });

  describe('mkfs-if-blank and the ext4 magic', () => {
    const check = () => {
      const text = stepToShell({ kind: 'mkfs-if-blank', device: '$DEV', label: 'ROOT' });
      return swap(
        swap(text, 'chroot /sysroot /usr/sbin/mkfs.ext4 -q -F -L ROOT $DEV', 'echo MKFS'),
        '>/dev/console',
        '>&2',
      );
    };
    const run = (file: string) => {
      const r = sh(check(), { DEV: file });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };

    it('makes a filesystem on a partition of zeros', () => {
      const file = join(dir, 'zeros.img');
      writeFileSync(file, Buffer.alloc(4 * 1024 * 1024));
      assert.equal(run(file), 'MKFS\n');
    });

    it('leaves a real ext4 alone', function () {
      const mkfs = findTool('mkfs.ext4');
      assert.ok(mkfs, 'mkfs.ext4 missing: run make deps (e2fsprogs)');
      const file = join(dir, 'ext4.img');
      const r = spawnSync(mkfs!, ['-q', '-F', file, '4M'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(run(file), '');
    });

    it('reads the magic 0xEF53 little-endian at byte 1080', () => {
      const file = join(dir, 'magic.img');
      const img = Buffer.alloc(8192);
      img.writeUInt16LE(0xef53, 1080);
      writeFileSync(file, img);
      assert.equal(run(file), '');
      img.fill(0).writeUInt16BE(0xef53, 1080);
      writeFileSync(file, img);
      assert.equal(run(file), 'MKFS\n');
      img.fill(0).writeUInt16LE(0xef53, 1082);
      writeFileSync(file, img);
      assert.equal(run(file), 'MKFS\n');
    });
  });
});
