// The README, proven in a booted Keel: one boot (and, at the end, the reboots an update and its
// rollback need) in which the README's own commands run with the image's Node and bundle. Blocks
// are taken from README.md itself, so a README change that breaks a promise fails here.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { repoRoot } from '../../builder/bundle.js';
import { addBusybox } from '../containers/busybox-fixture.js';
import { ImageStore } from '../../containers/store.js';
import { startRegistry, type RegistryProcess } from '../containers/registry-helpers.js';
import { keelAt } from '../containers/helpers.js';
import { testImage } from './image.js';
import { UpdateServer } from './update-fixture.js';
import { Vm } from './vm.js';

/** The fenced shell block of README.md that contains `marker`. */
export function readmeBlock(marker: string): string {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  const found = blocks.filter((b) => b.includes(marker));
  if (found.length !== 1)
    throw new Error(`README.md has ${found.length} sh blocks containing ${JSON.stringify(marker)}, expected 1`);
  return found[0];
}

/** The lines of a README block that start with `prefix` (commands shown one per line). */
function readmeLines(marker: string, prefix: string): string[] {
  return readmeBlock(marker)
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.replace(/\s+#.*$/, '').trimEnd());
}

/** A copy of `image` whose OEM partition holds `files` (written with debugfs, no mounts). */
function withOemFiles(image: string, dir: string, files: Record<string, string>): string {
  const copy = join(dir, 'keel.img');
  execFileSync('cp', ['--sparse=always', image, copy]);
  copyFileSync(image.replace(/keel\.img$/, 'keel.manifest.json'), join(dir, 'keel.manifest.json'));
  const table = JSON.parse(execFileSync('sfdisk', ['-J', copy], { encoding: 'utf8' })).partitiontable;
  const oem = table.partitions.find((p: { name?: string }) => p.name === 'OEM');
  if (!oem) throw new Error(`${image} has no OEM partition`);
  const part = join(dir, 'oem.ext4');
  const dd = (args: string[]) => execFileSync('dd', [...args, 'bs=512', 'status=none']);
  dd([`if=${copy}`, `of=${part}`, `skip=${oem.start}`, `count=${oem.size}`]);
  for (const [name, text] of Object.entries(files)) {
    const src = join(dir, `oem-${name}`);
    writeFileSync(src, text);
    execFileSync('debugfs', ['-w', '-R', `write ${src} ${name}`, part], { stdio: 'pipe' });
  }
  dd([`if=${part}`, `of=${copy}`, `seek=${oem.start}`, 'conv=notrunc']);
  return copy;
}

describe('the README in a booted Keel (QEMU tour)', function () {
  this.timeout(1_500_000);
  let dir: string;
  let vm: Vm;
  let registry: RegistryProcess;
  let updates: UpdateServer;
  let image: string;
  let ref: string;

  /** Writes `text` to `path` in the guest through the console, in lines short enough for the tty. */
  async function put(path: string, text: string): Promise<void> {
    const b64 = Buffer.from(text).toString('base64');
    await vm.sh(`rm -f ${path}.b64`);
    for (let i = 0; i < b64.length; i += 512) await vm.sh(`echo ${b64.slice(i, i + 512)} >> ${path}.b64`);
    const r = await vm.sh(`base64 -d ${path}.b64 > ${path} && rm ${path}.b64`);
    assert.equal(r.code, 0, r.out);
  }

  /** Runs a README block in the guest as a script; returns its output. */
  async function runBlock(marker: string, drop: RegExp | null = null): Promise<string> {
    const script = readmeBlock(marker)
      .split('\n')
      .filter((l) => !(drop && drop.test(l)))
      .join('\n');
    await put('/tmp/readme-step.sh', `set -e\n${script}`);
    const r = await vm.sh('sh /tmp/readme-step.sh 2>&1', 180_000);
    assert.equal(r.code, 0, `README block failed:\n${script}\n--- output ---\n${r.out}`);
    return r.out;
  }

  /** Runs `cmd` in the guest until its output matches `re` (each try is a new command; bounded). */
  async function until(cmd: string, re: RegExp, tries = 60): Promise<string> {
    let out = '';
    for (let i = 0; i < tries; i++) {
      out = (await vm.sh(cmd)).out;
      if (re.test(out)) return out;
      await vm.sh('sleep 1');
    }
    assert.fail(`${cmd}: never matched ${re}; last output:\n${out}`);
  }

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'keel-tour-'));
    // A registry on the build host holding busybox, as an operator's own registry would.
    registry = await startRegistry(join(dir, 'registry'), '');
    const src = join(dir, 'src-store');
    await addBusybox(new ImageStore(src), '/bin/busybox', 1700000000);
    const archive = join(dir, 'busybox-oci.tar');
    assert.equal(keelAt(src, ['save', '--format', 'oci', '-o', archive, 'busybox']).code, 0);
    execFileSync('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      `oci-archive:${archive}`,
      `docker://127.0.0.1:${registry.port}/tools/busybox:1.0`,
    ]);
    ref = `10.0.2.2:${registry.port}/tools/busybox:1.0`;
    // An update server with this image's USR as a newer version.
    const built = await testImage();
    updates = await UpdateServer.start(join(dir, 'updates'));
    updates.publish(built, '99.0.0');
    // The vendor's OEM cloud-config and the user's gzip user-data.
    mkdirSync(join(dir, 'img'));
    image = withOemFiles(built, join(dir, 'img'), {
      'cloud-config.yml':
        '#cloud-config\nwrite_files:\n  - path: /etc/oem-note\n    content: "from the OEM partition\\n"\n',
    });
    const userData = `#cloud-config
users:
  - name: alice
    gecos: Alice Example
    groups: [core]
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDyHz7HJ5GeqvTj6K4cYkGBnZk8+Hq7kGZfzK8mD3XhX tour@example
write_files:
  - path: /etc/tour/address
    content: "private=$private_ipv4\\n"
  - path: /etc/docker/daemon.json
    content: '{"insecure-registries": ["10.0.2.2:${registry.port}"]}'
coreos:
  update:
    server: ${updates.guestUrl}
    group: stable
    reboot_strategy: "off"
  locksmith:
    window_start: Thu 04:00
    window_length: 1h
`;
    const ud = join(dir, 'user-data.gz');
    writeFileSync(ud, gzipSync(userData));
    vm = Vm.start({ image, userData: ud });
    await vm.ready();
  });
  after(async () => {
    vm?.kill();
    await registry?.stop();
    updates?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('user-data', () => {
    it("applies the OEM partition's cloud-config.yml", async () => {
      assert.equal(
        (await vm.sh('cat /usr/share/oem/cloud-config.yml | head -1; cat /etc/oem-note')).out,
        '#cloud-config\nfrom the OEM partition',
      );
    });

    it('unpacks gzip user-data, makes users: with home and keys, substitutes $private_ipv4', async () => {
      assert.match(
        (await vm.sh('keel status')).out,
        /User-data: fw_cfg opt\/keel\/user-data \(cloud-config\): applied/,
      );
      const pw = await vm.sh(
        'grep ^alice: /etc/passwd; id -Gn alice; stat -c "%U %a" ' +
          '/home/alice/.ssh/authorized_keys; grep -c tour@example ' +
          '/home/alice/.ssh/authorized_keys',
      );
      assert.match(pw.out, /^alice:x:\d+:\d+:Alice Example:\/home\/alice:/m);
      assert.match(pw.out, /\bcore\b/);
      assert.match(pw.out, /^alice 600$/m);
      assert.match(pw.out, /^1$/m);
      assert.equal((await vm.sh('cat /etc/tour/address')).out, 'private=10.0.2.15');
    });

    it('puts coreos.update and coreos.locksmith into /etc/keel/update.conf', async () => {
      const conf = (await vm.sh('cat /etc/keel/update.conf')).out;
      assert.match(conf, /^GROUP=stable$/m);
      assert.match(conf, new RegExp(`^SERVER=${updates.guestUrl.replace(/\./g, '\\.')}$`, 'm'));
      assert.match(conf, /^REBOOT_STRATEGY=off$/m);
      assert.match(conf, /^LOCKSMITHD_REBOOT_WINDOW_START="Thu 04:00"$/m);
      assert.match(conf, /^LOCKSMITHD_REBOOT_WINDOW_LENGTH="1h"$/m);
    });
  });

  describe('units', () => {
    it('a unit of your own: the README block, enable --now, status, logs -f', async () => {
      const out = await runBlock('hello.service <<', /keel logs -u hello\.service -f/);
      assert.match(out, /hello\.service - Say hello every few seconds/);
      assert.match(out, /Active: active \(running\)/);
      assert.equal((await vm.sh('keel is-enabled hello.service')).out, 'enabled');
      // -f follows: new lines arrive after it started.
      await vm.sh('keel logs -u hello.service -f > /tmp/follow 2>&1 & echo $! > /tmp/follow.pid');
      const seen = await until('grep -c "hello$" /tmp/follow', /^([3-9]|\d\d+)$/);
      assert.ok(Number(seen) >= 3);
      await vm.sh('kill $(cat /tmp/follow.pid)');
    });

    it('timers, sockets, paths, drop-ins and templates: the README block', async () => {
      await runBlock('tick.timer <<');
      assert.equal((await vm.sh('echo hi | nc 127.0.0.1 8081')).out, 'hi');
      assert.equal((await vm.sh('keel is-active echo.service')).out, 'active');
      await vm.sh('touch /var/spool/inbox/letter');
      await until('ls /var/spool/done', /^letter$/m);
      assert.equal((await vm.sh('ls /var/spool/inbox | wc -l')).out.trim(), '0');
      await until('wc -l < /var/log/ticks', /^\s*([2-9]|\d\d+)$/, 90);
      assert.match((await vm.sh('keel logs -u greet@alice.service')).out, /hello alice/);
      const st = (
        await vm.sh(
          'keel status hello.service; keel restart hello.service; cat ' +
            '/proc/$(keel status hello.service | sed -n "s/.*Main PID: ' +
            '\\([0-9]*\\).*/\\1/p")/environ | tr "\\0" "\\n" | grep WHO',
        )
      ).out;
      assert.match(st, /Drop-In: \/etc\/systemd\/system\/hello\.service\.d\/10-who\.conf/);
      assert.match(st, /^WHO=drop-in$/m);
    });

    it("keel logs --since -5min -b shows this boot's ticks; a time in the future shows none", async () => {
      const now = (await vm.sh('keel logs -u tick.service --since -5min -b')).out;
      assert.match(now, /tick\.service|Finished|Started|Deactivated|succeeded/);
      assert.ok(now.split('\n').length >= 2, now);
      assert.equal((await vm.sh('keel logs -u tick.service --since "2999-01-01 00:00:00" | wc -l')).out.trim(), '0');
      assert.match(
        (await vm.sh('keel logs --since yesterday-ish 2>&1; echo code=$?')).out,
        /--since: not a time: "yesterday-ish".*\ncode=[12]$/s,
      );
    });

    it('disable, mask and unmask as the README says', async () => {
      assert.equal(
        (await vm.sh('keel disable hello.service; keel is-enabled hello.service')).out.split('\n').at(-1),
        'disabled',
      );
      // A unit file of your own is not masked over (systemd refuses too); an image unit is.
      assert.match(
        (await vm.sh('keel mask hello.service 2>&1; echo code=$?')).out,
        /is a unit file, remove it first\ncode=1$/,
      );
      const masked = await vm.sh(
        'keel mask keel-update.service && keel stop keel-update.service; keel ' +
          'start keel-update.service 2>&1; echo code=$?',
      );
      assert.match(masked.out, /masked/i);
      assert.match(masked.out, /code=[1-9]$/);
      assert.equal((await vm.sh('keel is-enabled keel-update.service')).out, 'masked');
      const back = await vm.sh(
        'keel unmask keel-update.service && keel start keel-update.service && keel is-active keel-update.service',
      );
      assert.equal(back.out.split('\n').at(-1), 'active');
      await vm.sh('keel stop hello.service');
    });
  });

  describe('containers', () => {
    it('keel pull from a registry on the build host (plain HTTP allowed by /etc/docker/daemon.json)', async () => {
      const r = await vm.sh(`keel pull ${ref}`, 180_000);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`Status: downloaded ${ref.replace(/\./g, '\\.')}`));
      assert.equal((await vm.sh(`keel run --rm --network none ${ref} echo pulled`)).out, 'pulled');
      // Not listed, not loopback: refused, naming the rule.
      const other = await vm.sh(`keel pull --insecure 10.0.2.3:5000/x 2>&1; echo code=$?`);
      assert.match(other.out, /plain HTTP.*10\.0\.2\.3:5000/);
      assert.match(other.out, /code=1$/);
    });

    it('the README demo: run, -d, ps, logs, exec, stop, rm', async () => {
      for (const line of readmeLines('keel run -d --name pinger', 'keel run busybox'))
        assert.equal((await vm.sh(line)).out, 'hello world');
      const d = readmeLines('keel run -d --name pinger', 'keel run -d --name pinger')[0];
      assert.match((await vm.sh(d)).out, /^[0-9a-f]{64}$/);
      await until('keel logs pinger', /ping\nping/);
      assert.match((await vm.sh('keel ps')).out, /Up .* pinger$/m);
      assert.match((await vm.sh('keel exec pinger ps')).out, /^\s*1 .*sh -c while true/m);
      assert.equal((await vm.sh('keel stop pinger && keel rm pinger')).code, 0);
      assert.doesNotMatch((await vm.sh('keel ps -a')).out, /pinger/);
    });

    it("keel run -it: the container's own terminal", async () => {
      const r = await vm.sh('keel run -it --rm --network none busybox tty');
      assert.equal(r.out.trim(), '/dev/pts/0');
    });

    it('keel run -dit and keel attach with input', async () => {
      assert.equal((await vm.sh('keel run -dit --name s --network none busybox sh')).code, 0);
      const r = await vm.sh('(echo "echo attached-$((40+2))"; echo "exit 3") | keel attach s; echo code=$?');
      assert.match(r.out, /attached-42/);
      assert.match(r.out, /code=3$/);
      await vm.sh('keel rm -f s');
    });

    it('-v, --read-only, --cap-drop and --network none confine as docker does', async () => {
      await vm.sh('mkdir -p /srv/data && echo from-host > /srv/data/f');
      assert.equal(
        (await vm.sh('keel run --rm --network none -v /srv/data:/data:ro busybox cat /data/f')).out,
        'from-host',
      );
      assert.match(
        (await vm.sh('keel run --rm --network none -v /srv/data:/data:ro busybox touch /data/g 2>&1')).out,
        /Read-only file system/,
      );
      assert.match(
        (await vm.sh('keel run --rm --network none --read-only busybox touch /x 2>&1')).out,
        /Read-only file system/,
      );
      assert.equal((await vm.sh('keel run --rm --network none busybox chown 1 /tmp; echo code=$?')).out, 'code=0');
      assert.match(
        (await vm.sh('keel run --rm --network none --cap-drop CHOWN busybox chown 1 /tmp 2>&1')).out,
        /Operation not permitted/,
      );
      assert.equal((await vm.sh('keel run --rm --network none busybox ls /sys/class/net')).out, 'lo');
    });

    it('--restart on-failure:2 runs a failing container three times, then leaves it exited', async () => {
      await vm.sh(`keel run -d --name flaky --network none --restart on-failure:2 busybox sh -c 'echo run; exit 1'`);
      await until(`keel inspect flaky | grep '"status"'`, /"status": "exited"/);
      assert.equal((await vm.sh('keel logs flaky | grep -c run')).out, '3');
      assert.equal(JSON.parse((await vm.sh('keel inspect flaky')).out)[0].state.restartCount, 2);
      await vm.sh('keel rm flaky');
    });

    it('the seccomp filter refuses unshare and mount, and --cap-add SYS_ADMIN allows them as in docker', async () => {
      // A user namespace needs no capability from the kernel: only the filter refuses it.
      const u = await vm.sh('keel run --rm --network none busybox unshare -U true 2>&1; echo code=$?');
      assert.match(u.out, /Operation not permitted\ncode=[1-9]\d*$/);
      const m = await vm.sh('keel run --rm --network none busybox mount -t tmpfs t /tmp 2>&1; echo code=$?');
      assert.match(m.out, /operation not permitted|permission denied/i);
      assert.match(m.out, /code=[1-9]\d*$/);
      const admin = await vm.sh(
        'keel run --rm --network none --cap-add SYS_ADMIN busybox mount -t tmpfs t /tmp; echo code=$?',
      );
      assert.equal(admin.out, 'code=0');
      assert.equal(
        (await vm.sh('keel run --rm --network none busybox grep Seccomp: /proc/self/status')).out,
        'Seccomp:\t2',
      );
    });
  });

  describe('updates', () => {
    it('keel update check finds the newer version on the server', async () => {
      const r = await vm.sh('keel update check', 120_000);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^update available: 99\.0\.0 \(running [^)]+\)/);
    });

    it('keel update apply --no-reboot, a reboot into B, then keel update rollback back to A', async () => {
      const apply = await vm.sh('keel update apply --no-reboot 2>&1', 600_000);
      assert.equal(apply.code, 0, apply.out);
      let mark = vm.mark();
      vm.type('keel reboot');
      await vm.ready(mark, 400_000);
      assert.match(
        (await vm.sh('keel update status')).out,
        /^Booted: slot B, version 99\.0\.0 \(on trial: not yet committed\)$/m,
      );
      mark = vm.mark();
      const rb = await vm.sh('keel update rollback --no-reboot');
      assert.equal(rb.code, 0, rb.out);
      assert.match(rb.out, /slot A/);
      vm.type('keel reboot');
      await vm.ready(mark, 400_000);
      assert.match((await vm.sh('keel update status')).out, /^Booted: slot A\b/m);
    });
  });
});
