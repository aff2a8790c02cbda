// cloud-config at every boot, before the default target: find user-data, check it whole, and
// only then apply it. A bad document is reported (console, journal, keel status) and nothing of
// it is applied; the machine boots on with ssh and the console.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { detectUserData, substituteVariables } from './dialect.js';
import { formatReport, validateCloudConfig } from './validate.js';
import { applyCloudConfig, type ApplyEnv } from './apply.js';
import { collectUserData, type DatasourceEnv } from './datasources.js';

/** What one piece of user-data came to, for `keel status` and the journal. */
export interface UserDataOutcome {
  source: string;
  kind: string;
  report: string[];
  applied: boolean;
  errors: string[];
}

/** True when `text` uses $private_ipv4 or $public_ipv4 (not escaped as \$private_ipv4). */
export function usesIpv4Variables(text: string): boolean {
  return /(^|[^\\])\$(private|public)_ipv4/.test(text);
}

/** Runs the whole step; never throws (a failure is an outcome). `awaitAddresses` brings the network up
 *  and resolves the machine's addresses, for user-data that needs them on a machine that has none yet. */
export async function runCloudConfig(
  ds: DatasourceEnv,
  apply: Omit<ApplyEnv, 'log'>,
  log: (m: string) => void,
  runScript: (path: string) => Promise<void>,
  awaitAddresses?: () => Promise<ApplyEnv['addresses']>,
): Promise<UserDataOutcome[]> {
  const outcomes: UserDataOutcome[] = [];
  let found;
  try {
    found = await collectUserData(ds);
  } catch (e) {
    log(`cloud-config: cannot read user-data: ${(e as Error).message}`);
    return outcomes;
  }
  for (const ud of found) {
    const o: UserDataOutcome = { source: ud.source, kind: 'unknown', report: [], applied: false, errors: [] };
    outcomes.push(o);
    try {
      const d = detectUserData(ud.bytes);
      o.kind = d.kind;
      if (d.kind === 'empty') continue;
      if (d.kind === 'script') {
        mkdirSync('/run/keel', { recursive: true });
        const path = '/run/keel/user-data-script';
        writeFileSync(path, d.text);
        chmodSync(path, 0o700);
        log(`cloud-config: ${ud.source}: running the user-data script`);
        await runScript(path);
        o.applied = true;
        continue;
      }
      if (d.kind !== 'cloud-config') {
        o.report = [
          d.kind === 'ignition'
            ? 'error: Ignition configs are not supported by Keel; use a #cloud-config document'
            : `error: ${d.message ?? 'not a #cloud-config document or a script'}`,
        ];
        for (const r of o.report) log(`cloud-config: ${ud.source}: ${r}`);
        continue;
      }
      if (awaitAddresses && !apply.addresses.private_ipv4 && usesIpv4Variables(d.text)) {
        apply = { ...apply, addresses: { ...apply.addresses, ...(await awaitAddresses()) } };
      }
      const text = substituteVariables(d.text, {
        privateIpv4: apply.addresses.private_ipv4,
        publicIpv4: apply.addresses.public_ipv4,
        privateIpv6: apply.addresses.private_ipv6,
        publicIpv6: apply.addresses.public_ipv6,
      });
      const v = validateCloudConfig(text);
      o.report = formatReport(v.report).split('\n').filter(Boolean);
      for (const r of o.report) log(`cloud-config: ${ud.source}: ${r}`);
      if (v.report.some((e) => e.kind === 'error') || !v.config) {
        log(`cloud-config: ${ud.source}: not applied (fix the errors above)`);
        continue;
      }
      const r = await applyCloudConfig(v.config, { ...apply, log: (m) => log(`cloud-config: ${m}`) });
      o.applied = true;
      o.errors = r.errors;
      log(`cloud-config: ${ud.source}: applied${r.errors.length ? ` with ${r.errors.length} errors` : ''}`);
    } catch (e) {
      o.errors.push((e as Error).message);
      log(`cloud-config: ${ud.source}: ${(e as Error).message}`);
    }
  }
  return outcomes;
}
