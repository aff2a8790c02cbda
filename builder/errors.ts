// Error types of the builder: a stable `code` and one message shape, "cannot VERB OBJECT: reason".

/** An error of the image builder that a user can act on. */
export class BuildError extends Error {
  readonly code: string;
  readonly path?: string;
  constructor(code: string, message: string, opts: { path?: string; cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'BuildError';
    this.code = code;
    if (opts.path !== undefined) this.path = opts.path;
  }
}
