// The one error type of the container side: `code` is stable for callers and tests to match on
// (EUNSAFE, ETOOBIG, EUNSUPPORTED, EDIGEST, EDIFFID, ENOIMAGE, EAMBIGUOUS, EINUSE, ELOCKED, ...),
// the message says "cannot VERB OBJECT: reason" and names the file, entry or image.
export class ContainerError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ContainerError';
    this.code = code;
  }
}

export function isContainerError(e: unknown, code?: string): e is ContainerError {
  return e instanceof ContainerError && (code === undefined || e.code === code);
}

/** A reason a pull failed, with its code; pullImage turns it into "cannot pull REF: reason". */
export class PullFailure extends Error {
  constructor(readonly code: string, reason: string) {
    super(reason);
    this.name = 'PullFailure';
  }
}
