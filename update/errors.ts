// The update agent's error: a KeelError ("cannot VERB OBJECT: reason", stable `code`) of its own
// name, so that logs and tests can tell an update failure from others.
import { KeelError, type KeelErrorDetails } from '../lib/errors.js';

/** An error of the update agent (ENOSLOT, EDOWNGRADE, ECHUNK, ECHECKPOINT, ...). */
export class UpdateError extends KeelError {
  constructor(code: string, message: string, details: KeelErrorDetails = {}) {
    super(code, message, details);
    this.name = 'UpdateError';
  }
}
