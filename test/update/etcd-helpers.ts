// A real etcd for tests: Debian's etcd-server (3.4, installed by `make deps`) as a child process
// with the v2 API on free loopback ports, its data in a directory of the test's choosing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

export const ETCD = '/usr/bin/etcd';

/** A loopback port nothing listens on at the time of asking. */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** A running etcd: its client URL, and how to stop it. */
export interface EtcdProcess {
  url: string;
  stop: () => Promise<void>;
}

/**
 * Starts a one-member etcd named `name` with its data in `dataDir`; resolves once GET /v2/keys/
 * answers 200. Fails with etcd's output if it is missing, exits, or does not answer within 10 s.
 */
export async function startEtcd(name: string, dataDir: string): Promise<EtcdProcess> {
  if (!existsSync(ETCD)) throw new Error(`${ETCD} not found: run make deps (it installs Debian's etcd-server)`);
  const [client, peer] = await Promise.all([freePort(), freePort()]);
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  // A clean environment: ETCD_* variables of the host would override these flags.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')));
  const etcd = spawn(
    ETCD,
    [
      '--enable-v2=true',
      '--name',
      name,
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      url,
      '--advertise-client-urls',
      url,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `${name}=${peerUrl}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let log = '';
  const keep = (b: Buffer) => {
    log = (log + b.toString()).slice(-4000);
  };
  etcd.stdout!.on('data', keep);
  etcd.stderr!.on('data', keep);
  const stop = () => stopEtcd(etcd);
  try {
    await waitForV2(etcd, url, () => log);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, stop };
}

/** Polls until the v2 root answers; fails early with etcd's output if it exits or refuses v2. */
async function waitForV2(etcd: ChildProcess, url: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (etcd.exitCode !== null) throw new Error(`etcd exited with ${etcd.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`${url}/v2/keys/`);
      if (r.status === 200) return;
      throw new Error(
        `etcd answers, but GET /v2/keys/ gave HTTP ${r.status}: the v2 API is unusable:\n${await r.text()}`,
      );
    } catch (e) {
      if ((e as Error).message.includes('v2 API')) throw e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`etcd did not answer on ${url} within 10 s:\n${log()}`);
}

/** SIGTERM, then SIGKILL after 5 s; resolves once etcd has exited. */
async function stopEtcd(etcd: ChildProcess): Promise<void> {
  if (etcd.exitCode !== null || etcd.signalCode !== null) return;
  const exited = new Promise((r) => etcd.once('exit', r));
  etcd.kill('SIGTERM');
  const t = setTimeout(() => etcd.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}
