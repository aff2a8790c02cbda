// Where the shared conformance corpus lies: beside the repository (KEEL_CORPUS overrides).
import { fileURLToPath } from 'node:url';

/** The corpus units directory, with a trailing slash. */
export const CORPUS =
  process.env.KEEL_CORPUS ?? fileURLToPath(new URL('../../../../shared/corpus/units/', import.meta.url));
