// Checking a user-data file on the build host (keel build, keel qemu): the report with the file's
// name on each line, and whether it may be used (no errors).
import { readFileSync } from 'node:fs';
import { validateCloudConfig } from './validate.js';

/** Validates `path`; `lines` are "PATH:LINE: kind: message", `ok` is false on any error. */
export function checkUserDataFile(path: string): { ok: boolean; lines: string[] } {
  let bytes: Buffer;
  try { bytes = readFileSync(path); } catch (e) {
    return { ok: false, lines: [`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`] };
  }
  const v = validateCloudConfig(bytes);
  const lines = v.report.map((e) => `${path}:${e.line}: ${e.kind}: ${e.message}`);
  if (v.notice) lines.push(`${path}: error: ${v.notice}`);
  return { ok: !v.report.some((e) => e.kind === 'error') && !v.notice, lines };
}
