// Where user-data comes from, in order: the OEM partition's cloud-config.yml (the vendor's, applied
// first), then the first of QEMU fw_cfg, a config drive (label config-2), cloud-config-url= on the
// kernel command line, and /var/lib/keel/user_data.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isKeelError } from '../lib/errors.js';
import { fetchBuffer } from '../lib/http.js';

/** Larger user-data is refused rather than held in memory at boot. */
const MAX_USER_DATA_BYTES = 64 << 20;

/** One piece of user-data and where it was found (the name appears in every report line). */
export interface UserData {
  source: string;
  bytes: Buffer;
}

/** What the datasources look at; tests point them into a temp directory. */
export interface DatasourceEnv {
  oemDir: string; // /usr/share/oem
  fwCfgUserData: string; // /sys/firmware/qemu_fw_cfg/by_name/opt/keel/user-data/raw
  sysBlock: string; // /sys/class/block
  dev: string; // /dev
  cmdline: string; // contents of /proc/cmdline
  localUserData: string; // /var/lib/keel/user_data
  mountConfigDrive(device: string, type: 'iso9660' | 'vfat'): string | null; // returns the mount point
  fetch(url: string): Promise<Buffer>;
  log(message: string): void;
  sleep(ms: number): Promise<void>;
}

/** The URL given by the last cloud-config-url= on the command line (last occurrence wins). */
export function cloudConfigUrl(cmdline: string): string | null {
  let url: string | null = null;
  for (const arg of cmdline.trim().split(/\s+/))
    if (arg.startsWith('cloud-config-url=')) url = arg.slice('cloud-config-url='.length);
  return url;
}

/** The filesystem label of a block device, for ISO9660 and FAT, or null. */
export function filesystemLabel(dev: Buffer): { type: 'iso9660' | 'vfat'; label: string } | null {
  // ISO9660: primary volume descriptor at 32 KiB: type 1, "CD001", volume id at +40 (32 bytes).
  if (dev.length >= 0x8000 + 72 && dev[0x8000] === 1 && dev.toString('latin1', 0x8001, 0x8006) === 'CD001') {
    return { type: 'iso9660', label: dev.toString('latin1', 0x8028, 0x8048).trim() };
  }
  if (dev.length >= 512 && dev.readUInt16LE(510) === 0xaa55) {
    // FAT32 keeps its boot-sector label at 0x47, FAT12/16 at 0x2b; the type string follows.
    if (dev.toString('latin1', 0x52, 0x57) === 'FAT32')
      return { type: 'vfat', label: dev.toString('latin1', 0x47, 0x52).trim() };
    if (dev.toString('latin1', 0x36, 0x39) === 'FAT')
      return { type: 'vfat', label: dev.toString('latin1', 0x2b, 0x36).trim() };
  }
  return null;
}

function readHead(path: string, n: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Finds a block device labelled config-2 and returns openstack/latest/user_data from it. */
export function readConfigDrive(env: DatasourceEnv): UserData | null {
  let names: string[] = [];
  try {
    names = readdirSync(env.sysBlock);
  } catch {
    return null;
  }
  for (const name of names.sort()) {
    const device = join(env.dev, name);
    let fs;
    try {
      fs = filesystemLabel(readHead(device, 0x8000 + 2048));
    } catch {
      continue;
    }
    if (!fs || fs.label.toLowerCase() !== 'config-2') continue;
    const dir = env.mountConfigDrive(device, fs.type);
    if (!dir) continue;
    const file = join(dir, 'openstack/latest/user_data');
    if (existsSync(file))
      return { source: `config drive ${device}:openstack/latest/user_data`, bytes: readFileSync(file) };
  }
  return null;
}

/** Fetches with retries and exponential backoff (1 s, 2 s, 4 s ... up to `tries`). */
export async function fetchWithRetry(env: DatasourceEnv, url: string, tries = 6): Promise<Buffer | null> {
  for (let i = 0; i < tries; i++) {
    try {
      return await env.fetch(url);
    } catch (e) {
      const what = isKeelError(e) ? e.message : `cannot fetch ${url}: ${(e as Error).message}`;
      env.log(`${what} (try ${i + 1}/${tries})`);
      if (i + 1 < tries) await env.sleep(1000 * 2 ** i);
    }
  }
  return null;
}

/** Every piece of user-data to apply, in order: OEM first, then the first user-data found. */
export async function collectUserData(env: DatasourceEnv): Promise<UserData[]> {
  const out: UserData[] = [];
  const oem = join(env.oemDir, 'cloud-config.yml');
  if (existsSync(oem)) out.push({ source: oem, bytes: readFileSync(oem) });
  if (existsSync(env.fwCfgUserData)) {
    out.push({ source: 'fw_cfg opt/keel/user-data', bytes: readFileSync(env.fwCfgUserData) });
    return out;
  }
  const drive = readConfigDrive(env);
  if (drive) {
    out.push(drive);
    return out;
  }
  const url = cloudConfigUrl(env.cmdline);
  if (url) {
    const bytes = await fetchWithRetry(env, url);
    if (bytes) {
      out.push({ source: url, bytes });
      return out;
    }
  }
  if (existsSync(env.localUserData)) out.push({ source: env.localUserData, bytes: readFileSync(env.localUserData) });
  return out;
}

/** The real system's datasource environment. */
export function realDatasourceEnv(
  mount: (dev: string, where: string, type: string) => void,
  log: (m: string) => void,
): DatasourceEnv {
  return {
    oemDir: '/usr/share/oem',
    fwCfgUserData: '/sys/firmware/qemu_fw_cfg/by_name/opt/keel/user-data/raw',
    sysBlock: '/sys/class/block',
    dev: '/dev',
    cmdline: (() => {
      try {
        return readFileSync('/proc/cmdline', 'utf8');
      } catch {
        return '';
      }
    })(),
    localUserData: '/var/lib/keel/user_data',
    mountConfigDrive: (device, type) => {
      const where = '/run/keel/config-drive';
      try {
        mkdirSync(where, { recursive: true });
        mount(device, where, type);
        return where;
      } catch (e) {
        log(`cannot mount config drive ${device}: ${(e as Error).message}`);
        return null;
      }
    },
    fetch: (url) => fetchBuffer(url, { maxBytes: MAX_USER_DATA_BYTES, timeoutMs: 10_000 }),
    log,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}
