// keel validate FILE: check user-data as `coreos-cloudinit --validate` did; exit 1 on any entry.
import { readFileSync } from 'node:fs';
import type { Verb } from './main.js';
import { formatReport, validateCloudConfig } from '../cloud-config/validate.js';

export const verb: Verb = {
  summary: "Check a cloud-config (or any user-data) and print coreos-cloudinit's report.",
  usage: 'keel validate FILE   (- reads standard input)',
  options: {},
  async run(_values, files) {
    if (files.length !== 1) throw new TypeError(`keel validate: name one file (got ${files.length})`);
    const [file] = files;
    let bytes: Buffer;
    try {
      bytes = readFileSync(file === '-' ? 0 : file);
    } catch (e) {
      process.stderr.write(
        `keel validate: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}\n`,
      );
      return 2;
    }
    const v = validateCloudConfig(bytes);
    process.stdout.write(formatReport(v.report));
    // Ignition passed coreos-cloudinit's check, but Keel cannot use it: say so, and fail.
    if (v.notice) process.stderr.write(`${file}: ${v.notice}\n`);
    return v.report.length || v.notice ? 1 : 0;
  },
};
