// The error type of the container side: Keel's KeelError under its area's name. `code` is stable
// for callers and tests to match on (EUNSAFE, ETOOBIG, EUNSUPPORTED, EDIGEST, EDIFFID, ENOIMAGE,
// EAMBIGUOUS, EINUSE, ELOCKED, ...); the message says "cannot VERB OBJECT: reason" and names the
// file, entry or image.
import { KeelError, type KeelErrorDetails } from '../lib/errors.js';

/** An error of images, the store, the runtime or the network that a user can act on. */
export class ContainerError extends KeelError {
  constructor(code: string, message: string, details: KeelErrorDetails = {}) {
    super(code, message, details);
    this.name = 'ContainerError';
  }
}

/** True when `e` is a ContainerError, optionally with a given code. */
export function isContainerError(e: unknown, code?: string): e is ContainerError {
  return e instanceof ContainerError && (code === undefined || e.code === code);
}

/** A reason a pull failed, with its code; pullImage turns it into "cannot pull REF: reason". */
export class PullFailure extends KeelError {
  constructor(code: string, reason: string) {
    super(code, reason);
    this.name = 'PullFailure';
  }
}
