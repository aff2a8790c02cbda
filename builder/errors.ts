// Error type of the builder: Keel's one error type under the builder's name.
import { KeelError, type KeelErrorDetails } from '../lib/errors.js';

/** An error of the image builder that a user can act on. */
export class BuildError extends KeelError {
  constructor(code: string, message: string, details: KeelErrorDetails = {}) {
    super(code, message, details);
    this.name = 'BuildError';
  }
}
