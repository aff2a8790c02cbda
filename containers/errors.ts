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
