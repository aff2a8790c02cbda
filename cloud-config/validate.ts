// `keel validate` and the boot-time check: coreos-cloudinit's `--validate` report for a piece of
// user-data, and the typed config the applier consumes. Pure: bytes in, report and config out.
import { detectUserData, type UserDataKind } from './dialect.js';
import { toNode, typedConfig } from './nodes.js';
import { runRules, type Entry } from './rules.js';
import { CLOUD_CONFIG_SCHEMA, schemaErrors, type CloudConfig } from './schema.js';
import { parseYaml } from './yaml.js';
import { KeelError } from '../lib/errors.js';

export type { Entry } from './rules.js';

/** What validating gave: the report, and the config when the document parsed. */
export interface Validation {
  kind: UserDataKind;
  report: Entry[];
  /** The typed config (known keys of the right types) when the document is cloud-config that parsed. */
  config: CloudConfig | null;
  /** A remark outside coreos-cloudinit's report (for Ignition, which it passed silently). */
  notice?: string;
}

const KIND_ORDER = { error: 0, info: 1, warning: 2 };

/**
 * Validates user-data as coreos-cloudinit's `--validate` did: scripts, empty data and Ignition
 * configs give no report; anything else that is not `#cloud-config` gives one error. Entries are
 * ordered by line (coreos-cloudinit's order followed Go's random map order).
 */
export function validateCloudConfig(input: Buffer | Uint8Array | string): Validation {
  const d = detectUserData(input);
  switch (d.kind) {
    case 'empty':
    case 'script':
      return { kind: d.kind, report: [], config: null };
    case 'ignition':
      return { kind: d.kind, report: [], config: null, notice: d.message };
    case 'unknown':
      return { kind: d.kind, report: [{ line: 1, kind: 'error', message: d.message! }], config: null };
  }
  const { root, error } = parseYaml(d.text.replace(/\r\n?/g, '\n')); // libyaml reads CR and CRLF as LF
  if (error)
    return {
      kind: d.kind,
      report: [{ line: error.line, column: error.column, kind: 'error', message: error.message }],
      config: null,
    };
  const node = root && toNode(root, '', CLOUD_CONFIG_SCHEMA);
  const report: Entry[] = [];
  if (node)
    runRules(node, CLOUD_CONFIG_SCHEMA, (kind, at, message) =>
      report.push({ line: at.line, column: at.column, kind, message }),
    );
  const sorted = report
    .map((e, i) => [e, i] as const)
    .sort(([a, i], [b, j]) => a.line - b.line || KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || i - j)
    .map(([e]) => e);
  const config = typedConfig(node, CLOUD_CONFIG_SCHEMA);
  // Without errors in the report, ajv must find the typed config sound (types and patterns).
  const problems = sorted.some((e) => e.kind === 'error') ? [] : schemaErrors(config);
  if (problems.length)
    throw new KeelError(
      'EBUG',
      `BUG: cannot type the cloud-config: it does not match its schema: ${problems.join('; ')}`,
    );
  return { kind: d.kind, report: sorted, config };
}

/** The report as coreos-cloudinit printed it: one `line N: kind: message` line per entry. */
export function formatReport(entries: Entry[]): string {
  return entries.map((e) => `line ${e.line}: ${e.kind}: ${e.message}\n`).join('');
}
