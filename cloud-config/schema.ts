// The cloud-config keys Keel reads, once: a JSON Schema (what ajv checks, and what the validator
// walks for coreos-cloudinit's structure and `valid:` rules) and the TypeScript type the applier
// consumes. Keys are spelled with `_`; `-` in user-data is read as `_`.
import { Ajv } from 'ajv';
import { ETCD, ETCD2, FLANNEL, FLEET, LOCKSMITH, UPDATE, type FieldSpec, type SectionOf } from './schema-sections.js';

/** The subset of JSON Schema used here, with two annotations: `x-deprecated` (why) and `x-env`. */
export interface SchemaNode {
  type: 'string' | 'boolean' | 'integer' | 'number' | 'object' | 'array';
  properties?: Record<string, SchemaNode>;
  additionalProperties?: false;
  items?: SchemaNode;
  pattern?: string;
  'x-deprecated'?: string;
  'x-env'?: string;
}

const JSON_TYPE = { string: 'string', bool: 'boolean', int: 'integer', float64: 'number' } as const;
// A `valid:` rule; the empty string is Go's zero value, which is always valid.
const valid = (rule?: string) => (rule ? { pattern: `^$|${rule}` } : {});
const str = (rule?: string): SchemaNode => ({ type: 'string', ...valid(rule) });
const bool: SchemaNode = { type: 'boolean' };
const list = (items: SchemaNode): SchemaNode => ({ type: 'array', items });
const struct = (properties: Record<string, SchemaNode>): SchemaNode => ({
  type: 'object',
  additionalProperties: false,
  properties,
});
const deprecated = (s: SchemaNode, why: string): SchemaNode => ({ ...s, 'x-deprecated': why });
const section = (table: Record<string, FieldSpec>): SchemaNode =>
  struct(
    Object.fromEntries(
      Object.entries(table).map(([k, f]) => [
        k,
        {
          type: JSON_TYPE[f.go],
          'x-env': f.env,
          ...valid(f.pattern),
          ...(f.deprecated ? { 'x-deprecated': f.deprecated } : {}),
        } as SchemaNode,
      ]),
    ),
  );

const REMOTE = 'trying to fetch from a remote endpoint introduces too many intermittent errors';

/** users[] */
const USER = struct({
  name: str(),
  passwd: str(),
  ssh_authorized_keys: list(str()),
  coreos_ssh_import_github: deprecated(str(), REMOTE),
  coreos_ssh_import_github_users: deprecated(list(str()), REMOTE),
  coreos_ssh_import_url: deprecated(str(), REMOTE),
  gecos: str(),
  homedir: str(),
  no_create_home: bool,
  primary_group: str(),
  groups: list(str()),
  no_user_group: bool,
  system: bool,
  no_log_init: bool,
  shell: str(),
});

/** write_files[] */
const FILE = struct({
  encoding: str('^(base64|b64|gz|gzip|gz\\+base64|gzip\\+base64|gz\\+b64|gzip\\+b64)$'),
  content: str(),
  owner: str(),
  path: str(),
  permissions: str('^0?[0-7]{3,4}$'),
});

/** coreos.units[] */
const UNIT = struct({
  name: str(),
  mask: bool,
  enable: bool,
  runtime: bool,
  content: str(),
  command: str('^(start|stop|restart|reload|try-restart|reload-or-restart|reload-or-try-restart)$'),
  drop_ins: list(struct({ name: str(), content: str() })),
});

const COREOS = struct({
  etcd: deprecated(section(ETCD), 'etcd is no longer shipped in Container Linux'),
  etcd2: deprecated(section(ETCD2), 'etcd2 is no longer shipped in Container Linux'),
  flannel: section(FLANNEL),
  fleet: deprecated(section(FLEET), 'fleet is no longer shipped in Container Linux'),
  locksmith: section(LOCKSMITH),
  oem: struct({ id: str(), name: str(), version_id: str(), home_url: str(), bug_report_url: str() }),
  update: section(UPDATE),
  units: list(UNIT),
});

/** The whole document. */
export const CLOUD_CONFIG_SCHEMA: SchemaNode = struct({
  ssh_authorized_keys: list(str()),
  coreos: COREOS,
  write_files: list(FILE),
  hostname: str(),
  users: list(USER),
  manage_etc_hosts: str(),
});

/** Go's name for a schema type in "incorrect type" warnings: string, bool, int, float64, struct, []T. */
export function humanType(s: SchemaNode): string {
  switch (s.type) {
    case 'boolean':
      return 'bool';
    case 'integer':
      return 'int';
    case 'number':
      return 'float64';
    case 'object':
      return 'struct';
    case 'array':
      return `[]${humanType(s.items!)}`;
    default:
      return 'string';
  }
}

/** A user (users[]); `name` is '' when the document gave none, as in coreos-cloudinit. */
export interface User {
  name: string;
  passwd?: string;
  gecos?: string;
  homedir?: string;
  no_create_home?: boolean;
  primary_group?: string;
  groups?: string[];
  no_user_group?: boolean;
  system?: boolean;
  no_log_init?: boolean;
  shell?: string;
  ssh_authorized_keys?: string[];
  coreos_ssh_import_github?: string;
  coreos_ssh_import_github_users?: string[];
  coreos_ssh_import_url?: string;
}

/** A file (write_files[]). `content` is text: !!binary bytes that are not UTF-8 come base64-encoded (nodes.ts). */
export interface WriteFile {
  path: string;
  content?: string;
  owner?: string;
  permissions?: string;
  encoding?: string;
}

/** A unit (coreos.units[]) and its drop-ins. */
export interface Unit {
  name: string;
  content?: string;
  runtime?: boolean;
  enable?: boolean;
  mask?: boolean;
  command?: string;
  drop_ins?: { name: string; content: string }[];
}

/** The service sections, typed from their tables in schema-sections.ts. */
export type Etcd = SectionOf<typeof ETCD>;
export type Etcd2 = SectionOf<typeof ETCD2>;
export type Fleet = SectionOf<typeof FLEET>;
export type Flannel = SectionOf<typeof FLANNEL>;
export type Locksmith = SectionOf<typeof LOCKSMITH>;
export type Update = SectionOf<typeof UPDATE>;
export type Oem = { id?: string; name?: string; version_id?: string; home_url?: string; bug_report_url?: string };

/** The `coreos:` section. */
export interface CoreOS {
  etcd?: Etcd;
  etcd2?: Etcd2;
  flannel?: Flannel;
  fleet?: Fleet;
  locksmith?: Locksmith;
  oem?: Oem;
  update?: Update;
  units?: Unit[];
}

/** A cloud-config as the applier consumes it: known keys only, each of its schema type. */
export interface CloudConfig {
  hostname?: string;
  ssh_authorized_keys?: string[];
  users?: User[];
  write_files?: WriteFile[];
  manage_etc_hosts?: string;
  coreos?: CoreOS;
}

const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addKeyword({ keyword: 'x-deprecated', schemaType: 'string' });
ajv.addKeyword({ keyword: 'x-env', schemaType: 'string' });
const check = ajv.compile<CloudConfig>(CLOUD_CONFIG_SCHEMA);

/** Checks a value against the schema with ajv; returns "path: message" for each problem. */
export function schemaErrors(value: unknown): string[] {
  if (check(value)) return [];
  return (check.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}`);
}

/** Whether `value` is a CloudConfig (for configs that do not come from a document). */
export const isCloudConfigValue = (value: unknown): value is CloudConfig => check(value);
