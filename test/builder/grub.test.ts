// GRUB configs: both slot entries, the disk-from-$root trick, grubenv loading, and grub-script-check.
import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keelPartitions } from '../../builder/disk.js';
import { decodeGrubenv, encodeGrubenv } from '../../slots/grubenv.js';
import { earlyConfig, ESP_LABEL, GRUB_MODULES, grubConfig, initialGrubenv } from '../../builder/grub.js';

const CMDLINE = 'console=ttyS0,115200 panic=10 quiet';

/** The body of the menuentry with id `id`. */
function entry(cfg: string, id: string): string {
  const m = new RegExp(`^menuentry "[^"]*" --id ${id} \\{\\n([\\s\\S]*?)\\n\\}$`, 'm').exec(cfg);
  assert.ok(m, `no menuentry ${id}`);
  return m[1];
}

function grubScriptCheck(): string | null {
  for (const d of ['/usr/bin', '/usr/sbin', '/bin', '/sbin']) {
    try {
      accessSync(join(d, 'grub-script-check'), constants.X_OK);
      return join(d, 'grub-script-check');
    } catch {
      /* next */
    }
  }
  return null;
}

describe('builder/grub', () => {
  const cfg = grubConfig(CMDLINE);

  it('has an entry per slot, each booting its USR partition', () => {
    const a = entry(cfg, 'keel-a')
      .split('\n')
      .map((l) => l.trim());
    const b = entry(cfg, 'keel-b')
      .split('\n')
      .map((l) => l.trim());
    assert.deepEqual(a, [
      'set root=($keel_disk,gpt3)',
      'echo "keel: booting slot A"',
      'linux /boot/vmlinuz keel.usr=USR-A keel.slot=A ' +
        `keel.verity=$KEEL_A_HASH $keel_trial ${CMDLINE} $keel_oem_cmdline`,
      'initrd /boot/initrd',
    ]);
    assert.deepEqual(b, [
      'set root=($keel_disk,gpt4)',
      'echo "keel: booting slot B"',
      'linux /boot/vmlinuz keel.usr=USR-B keel.slot=B ' +
        `keel.verity=$KEEL_B_HASH $keel_trial ${CMDLINE} $keel_oem_cmdline`,
      'initrd /boot/initrd',
    ]);
  });

  it('uses the partition numbers the disk layout gives USR-A and USR-B', () => {
    const parts = keelPartitions({ esp: 1, biosBoot: 1, usr: 1, oem: 1, root: 1 }, 'seed');
    for (const [slot, id] of [
      ['A', 'keel-a'],
      ['B', 'keel-b'],
    ]) {
      const index = parts.find((p) => p.name === `USR-${slot}`)!.index;
      assert.match(entry(cfg, id), new RegExp(`set root=\\(\\$keel_disk,gpt${index}\\)`));
      assert.match(entry(cfg, id), new RegExp(` keel\\.usr=USR-${slot} `));
    }
  });

  it('defaults to slot A, with B as the fallback entry', () => {
    assert.match(cfg, /^set KEEL_ORDER="A B"$/m);
    assert.match(cfg, /set default=keel-a; set fallback=keel-b; fi$/m);
    assert.match(cfg, /^set timeout=0$/m);
  });

  it('takes the disk from $root with regexp before any entry changes $root', () => {
    const line = cfg.split('\n').find((l) => l.startsWith('regexp '));
    assert.equal(line, `regexp --set=1:keel_disk '^([^,]+),' "$root"`);
    assert.ok(cfg.indexOf(line!) < cfg.indexOf('menuentry'));
    // The pattern as ERE on the values $root takes after search --label.
    const re = new RegExp(/'(.*)'/.exec(line!)![1]);
    assert.equal(re.exec('hd0,gpt1')?.[1], 'hd0');
    assert.equal(re.exec('hd12,gpt1')?.[1], 'hd12');
    assert.equal(re.exec('ahci0,gpt1')?.[1], 'ahci0');
  });

  it('loads keel/grubenv from the ESP when it is there', () => {
    assert.match(cfg, /^set keel_esp=\$root$/m);
    // The first good copy of the two wins; only Keel's variables are read from it.
    assert.match(
      cfg,
      /^if load_env -f \(\$keel_esp\)\/keel\/grubenv KEEL_ORDER KEEL_A_OK KEEL_A_TRIES KEEL_A_HASH KEEL_B_OK KEEL_B_TRIES KEEL_B_HASH; then/m,
    );
    assert.match(cfg, /^elif load_env -f \(\$keel_esp\)\/keel\/grubenv2 /m);
    assert.ok(cfg.indexOf('load_env') < cfg.indexOf('menuentry'));
  });

  it('talks on the serial console', () => {
    assert.match(cfg, /^serial --unit=0 --speed=115200$/m);
    assert.match(cfg, /^terminal_input serial console$/m);
    assert.match(cfg, /^terminal_output serial console$/m);
  });

  it('finds the ESP by label in the early config and hands over to keel/grub.cfg', () => {
    assert.equal(
      earlyConfig(),
      `search --no-floppy --label ${ESP_LABEL} --set=root\nset prefix=($root)/keel\nconfigfile ($root)/keel/grub.cfg\n`,
    );
    assert.equal(ESP_LABEL, 'KEEL-ESP');
  });

  it('builds in the module of every command the configs use', () => {
    for (const [platform, mods] of Object.entries(GRUB_MODULES)) {
      for (const m of [
        'search',
        'search_label',
        'configfile',
        'regexp',
        'loadenv',
        'test',
        'linux',
        'serial',
        'terminal',
        'echo',
        'part_gpt',
        'fat',
        'squash4',
      ]) {
        assert.ok((mods as readonly string[]).includes(m), `${platform} lacks ${m}`);
      }
    }
  });

  it("starts grubenv with slot A good and fits GRUB's 1024-byte block", () => {
    const env = initialGrubenv();
    assert.deepEqual(Object.fromEntries(env), {
      KEEL_ORDER: 'A B',
      KEEL_A_OK: '1',
      KEEL_A_TRIES: '0',
      KEEL_B_OK: '0',
      KEEL_B_TRIES: '0',
    });
    const block = encodeGrubenv(env);
    assert.equal(block.length, 1024);
    assert.deepEqual([...decodeGrubenv(block)], env);
  });

  describe('grub-script-check', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'keel-grub-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const check = (tool: string, text: string) => {
      const file = join(dir, 'grub.cfg');
      writeFileSync(file, text);
      return spawnSync(tool, [file], { encoding: 'utf8' });
    };

    it('accepts grub.cfg and the early config (and rejects a broken one)', function () {
      const tool = grubScriptCheck();
      assert.ok(tool, 'grub-script-check missing: run make deps (grub-common)');
      for (const text of [cfg, earlyConfig()]) {
        const r = check(tool!, text);
        assert.equal(r.status, 0, r.stdout + r.stderr);
      }
      assert.notEqual(
        check(tool!, cfg.replace(/\n\}\n$/, '\n')).status,
        0,
        'grub-script-check must reject an unclosed menuentry',
      );
    });
  });
});
