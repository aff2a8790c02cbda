// The datasource order, the config-drive label reader, and cloud-config-url with retries.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cloudConfigUrl,
  collectUserData,
  fetchWithRetry,
  filesystemLabel,
  type DatasourceEnv,
} from '../../cloud-config/datasources.js';

function fakeEnv(dir: string, over: Partial<DatasourceEnv> = {}): DatasourceEnv {
  mkdirSync(join(dir, 'oem'), { recursive: true });
  mkdirSync(join(dir, 'sys/class/block'), { recursive: true });
  mkdirSync(join(dir, 'dev'), { recursive: true });
  return {
    oemDir: join(dir, 'oem'),
    fwCfgUserData: join(dir, 'fwcfg'),
    sysBlock: join(dir, 'sys/class/block'),
    dev: join(dir, 'dev'),
    cmdline: '',
    localUserData: join(dir, 'var-user-data'),
    mountConfigDrive: () => null,
    fetch: async () => {
      throw new Error('offline');
    },
    log: () => {},
    sleep: async () => {},
    ...over,
  };
}

describe('cloud-config datasources', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-ds-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('applies OEM first, then the first of fw_cfg, config drive, cloud-config-url and the local file', async () => {
    const env = fakeEnv(dir, {
      cmdline: 'console=ttyS0 cloud-config-url=http://a/1 cloud-config-url=http://b/2',
      fetch: async (u) => Buffer.from(`#cloud-config\n# from ${u}\n`),
    });
    writeFileSync(join(dir, 'var-user-data'), '#cloud-config\n# local\n');
    // Only the local file and the URL: the URL (last occurrence) wins over the local file.
    let got = await collectUserData(env);
    assert.deepEqual(
      got.map((u) => u.source),
      ['http://b/2'],
    );
    writeFileSync(join(dir, 'oem/cloud-config.yml'), '#cloud-config\n# oem\n');
    writeFileSync(join(dir, 'fwcfg'), '#cloud-config\n# fwcfg\n');
    got = await collectUserData(env);
    assert.deepEqual(
      got.map((u) => u.source),
      [join(dir, 'oem/cloud-config.yml'), 'fw_cfg opt/keel/user-data'],
    );
    rmSync(join(dir, 'fwcfg'));
    got = await collectUserData({ ...env, cmdline: '' });
    assert.deepEqual(
      got.map((u) => u.source),
      [join(dir, 'oem/cloud-config.yml'), join(dir, 'var-user-data')],
    );
  });

  it('finds a config drive by its config-2 label (ISO9660 and vfat)', async () => {
    const tree = join(dir, 'tree/openstack/latest');
    mkdirSync(tree, { recursive: true });
    writeFileSync(join(tree, 'user_data'), '#cloud-config\nhostname: drive\n');
    const iso = join(dir, 'dev/vdb');
    mkdirSync(join(dir, 'dev'), { recursive: true });
    execFileSync('genisoimage', ['-quiet', '-V', 'config-2', '-r', '-o', iso, join(dir, 'tree')]);
    assert.deepEqual(filesystemLabel(readFileSync(iso)), { type: 'iso9660', label: 'config-2' });
    const fat = join(dir, 'fat.img');
    execFileSync('mkfs.vfat', ['-C', '-n', 'CONFIG-2', fat, '2048'], { stdio: 'ignore' });
    assert.deepEqual(filesystemLabel(readFileSync(fat)), { type: 'vfat', label: 'CONFIG-2' });
    mkdirSync(join(dir, 'sys/class/block/vdb'), { recursive: true });
    const env = fakeEnv(dir, {
      mountConfigDrive: (dev, type) => (dev === iso && type === 'iso9660' ? join(dir, 'tree') : null),
    });
    const got = await collectUserData(env);
    assert.equal(got[0].source, `config drive ${iso}:openstack/latest/user_data`);
    assert.match(got[0].bytes.toString(), /hostname: drive/);
  });

  it('retries cloud-config-url with backoff and gives up cleanly', async () => {
    const waits: number[] = [];
    let calls = 0;
    const env = fakeEnv(dir, {
      sleep: async (ms) => {
        waits.push(ms);
      },
      fetch: async () => {
        if (++calls < 3) throw new Error('connection refused');
        return Buffer.from('ok');
      },
    });
    assert.equal((await fetchWithRetry(env, 'http://x/'))?.toString(), 'ok');
    assert.deepEqual(waits, [1000, 2000]);
    calls = -100;
    assert.equal(await fetchWithRetry(env, 'http://x/', 3), null);
    assert.equal(cloudConfigUrl('a cloud-config-url=http://one cloud-config-url=https://two b'), 'https://two');
  });

  it('fetches over real HTTP on loopback', async () => {
    const server = createServer((_q, r) => {
      r.end('#cloud-config\nhostname: served\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const { realDatasourceEnv } = await import('../../cloud-config/datasources.js');
      const real = realDatasourceEnv(
        () => {},
        () => {},
      );
      assert.match((await real.fetch(`http://127.0.0.1:${port}/user-data`)).toString(), /hostname: served/);
    } finally {
      server.close();
    }
  });
});
