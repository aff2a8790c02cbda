// Where the shared conformance corpus lies: ../shared/corpus beside the repository root, or
// KEEL_CORPUS (the corpus root; test/units reads it as its units/ directory, so both work here).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url)); // from dist/test/cloud-config/
const root = process.env.KEEL_CORPUS ?? resolve(repoRoot, '../shared/corpus');

/** The cloud-config corpus directory. */
export const CLOUD_CORPUS =
  [join(root, 'cloud-config'), join(root, '..', 'cloud-config')].find((d) => existsSync(d)) ??
  join(root, 'cloud-config');
