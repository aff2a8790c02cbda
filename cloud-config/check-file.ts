// Checking a user-data file on the build host (keel build, keel qemu): the report with the file's
// name, line and column on each line, whether it may be used (no errors), and the first error as a
// KeelError naming the file, line and column.
import { readFileSync } from 'node:fs';
import { KeelError } from '../lib/errors.js';
import { validateCloudConfig, type Entry } from './validate.js';

/** A user-data file that cannot be used (code EUSERDATA): where, and what is wrong there. */
export class UserDataError extends KeelError {
  readonly line: number;
  readonly column: number;
  constructor(path: string, at: { line: number; column?: number }, reason: string) {
    super('EUSERDATA', `cannot use user-data ${path}: line ${at.line}, column ${at.column ?? 1}: ${reason}`, { path });
    this.name = 'UserDataError';
    this.line = at.line;
    this.column = at.column ?? 1;
  }
}

/** Where an entry is, as compilers print it: PATH:LINE:COLUMN (the column when the report has one). */
const place = (path: string, e: Entry) => `${path}:${e.line}${e.column === undefined ? '' : `:${e.column}`}`;

/**
 * Validates `path`; `lines` are "PATH:LINE:COLUMN: kind: message", `ok` is false on any error, and
 * `error` is the first one (a KeelError: EUSERDATA, or the read failure's errno code).
 */
export function checkUserDataFile(path: string): { ok: boolean; lines: string[]; error: KeelError | null } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    const error = new KeelError(code, `cannot read user-data ${path}: ${code}`, { path, syscall: 'open', cause: e });
    return { ok: false, lines: [`${path}: cannot read: ${code}`], error };
  }
  const v = validateCloudConfig(bytes);
  const lines = v.report.map((e) => `${place(path, e)}: ${e.kind}: ${e.message}`);
  if (v.notice) lines.push(`${path}: error: ${v.notice}`);
  const first = v.report.find((e) => e.kind === 'error');
  const error = first
    ? new UserDataError(path, first, first.message)
    : v.notice
      ? new UserDataError(path, { line: 1 }, v.notice)
      : null;
  return { ok: !error, lines, error };
}
