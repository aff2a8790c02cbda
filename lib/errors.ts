// Keel's one error type: a stable `code` for callers and tests to match on, the `path`, `syscall` and
// `cause` behind it, and one message shape, "cannot VERB OBJECT: reason".

/** What a KeelError may carry besides its code and message. */
export interface KeelErrorDetails {
  path?: string;
  syscall?: string;
  cause?: unknown;
}

/** An error a user can act on: `code` is stable (EUNSAFE, ESIGNATURE, ENOIMAGE, ...). */
export class KeelError extends Error {
  readonly code: string;
  readonly path?: string;
  readonly syscall?: string;
  constructor(code: string, message: string, details: KeelErrorDetails = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'KeelError';
    this.code = code;
    if (details.path !== undefined) this.path = details.path;
    if (details.syscall !== undefined) this.syscall = details.syscall;
  }
}

/** True when `e` is a KeelError, optionally with a given code. */
export function isKeelError(e: unknown, code?: string): e is KeelError {
  return e instanceof KeelError && (code === undefined || e.code === code);
}

/** A short description of an error: its message, plus its code (ECONNREFUSED, EIO, ...) when the message lacks it. */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = (e as NodeJS.ErrnoException).code;
  return code && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
}
