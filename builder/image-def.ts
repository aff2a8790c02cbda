// The image definition (image/keel.yaml): its JSON Schema, loading and validation.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import yaml from 'js-yaml';
import { Ajv, type ErrorObject } from 'ajv';
import { BuildError } from './errors.js';
import { parseSize } from './size.js';

const DEB_NAME = '^[a-z0-9][a-z0-9+.-]+$';
const DEB_VERSION = '^([0-9]+:)?[0-9A-Za-z.+~-]+$';
const SIZE = {
  anyOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', pattern: '^\\s*\\d+\\s*[a-zA-Z]*\\s*$' },
  ],
};

/** JSON Schema of image/keel.yaml. */
export const imageSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'version', 'kernel', 'node', 'packages', 'partitions', 'update'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
    version: { type: 'string', pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+([-+][0-9A-Za-z.-]+)?$' },
    kernel: {
      type: 'object',
      additionalProperties: false,
      required: ['package', 'version', 'release'],
      properties: {
        package: { type: 'string', pattern: DEB_NAME },
        version: { type: 'string', pattern: DEB_VERSION },
        release: { type: 'string', pattern: '^[0-9][0-9A-Za-z.+_-]*$' },
        cmdline: { type: 'string' },
        initramfsModules: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9_-]+$' } },
        usrModules: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9_/.-]+$' } },
      },
    },
    node: {
      type: 'object',
      additionalProperties: false,
      required: ['version'],
      properties: { version: { type: 'string', pattern: '^[0-9]+\\.[0-9]+\\.[0-9]+$' } },
    },
    packages: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'version'],
        properties: { name: { type: 'string', pattern: DEB_NAME }, version: { type: 'string', pattern: DEB_VERSION } },
      },
    },
    exclude: { type: 'array', items: { type: 'string', pattern: '^[^/]' } },
    partitions: {
      type: 'object',
      additionalProperties: false,
      required: ['esp', 'biosBoot', 'usr', 'oem', 'root'],
      properties: { esp: SIZE, biosBoot: SIZE, usr: SIZE, oem: SIZE, root: SIZE },
    },
    files: { type: 'string' },
    oem: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      properties: {
        id: { type: 'string', pattern: '^[a-z0-9-]+$' },
        kernelArgs: { type: 'string', pattern: '^[^"$\\\\;]*$' },
        cloudConfig: { type: 'string' },
      },
    },
    update: {
      type: 'object',
      additionalProperties: false,
      required: ['publicKey'],
      properties: { publicKey: { type: 'string', minLength: 1 } },
    },
    units: {
      type: 'object',
      additionalProperties: false,
      properties: { enable: { type: 'array', items: { type: 'string', pattern: '^[^/]+\\.[a-z]+$' } } },
    },
  },
} as const;

/** A validated image definition with sizes in bytes and paths made absolute. */
export interface ImageDef {
  file: string;
  name: string;
  version: string;
  kernel: {
    package: string;
    version: string;
    release: string;
    cmdline: string;
    initramfsModules: string[];
    usrModules: string[];
  };
  node: { version: string };
  packages: { name: string; version: string }[];
  exclude: string[];
  partitions: { esp: number; biosBoot: number; usr: number; oem: number; root: number };
  filesDir: string | null;
  oem: { id: string; kernelArgs: string; cloudConfig: string | null } | null;
  units: { enable: string[] };
  /** The ed25519 public key (PEM file) that update payloads must be signed with; baked into USR. */
  update: { publicKey: string };
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validate = ajv.compile(imageSchema);

function valueAt(doc: unknown, pointer: string): unknown {
  let v: any = doc;
  for (const part of pointer.split('/').slice(1)) v = v?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v;
}

/** Turns one ajv error into "field: problem (got VALUE)". */
export function describeSchemaError(doc: unknown, e: ErrorObject): string {
  const field = e.instancePath.slice(1).replace(/\//g, '.') || '(top level)';
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    return `${field === '(top level)' ? '' : field + '.'}${extra}: unknown field`;
  }
  if (e.keyword === 'required')
    return `${field}: missing required field "${(e.params as { missingProperty: string }).missingProperty}"`;
  return `${field}: ${e.message} (got ${JSON.stringify(valueAt(doc, e.instancePath))})`;
}

/** Validates a parsed definition; throws a BuildError listing every bad field by name and value. */
export function checkImageDef(doc: unknown, file: string): ImageDef {
  if (!validate(doc)) {
    const seen = new Set<string>();
    const lines = (validate.errors ?? [])
      .map((e) => describeSchemaError(doc, e))
      .filter((l) => !seen.has(l) && seen.add(l));
    throw new BuildError('EIMAGEDEF', `cannot use image definition ${file}:\n  ${lines.join('\n  ')}`, { path: file });
  }
  const d = doc as any;
  const sizes: any = {};
  const bad: string[] = [];
  for (const k of Object.keys(d.partitions)) {
    try {
      sizes[k] = parseSize(d.partitions[k]);
    } catch (e) {
      bad.push(`partitions.${k}: ${(e as Error).message}`);
    }
  }
  if (bad.length)
    throw new BuildError('EIMAGEDEF', `cannot use image definition ${file}:\n  ${bad.join('\n  ')}`, { path: file });
  return {
    file,
    name: d.name,
    version: d.version,
    kernel: {
      package: d.kernel.package,
      version: d.kernel.version,
      release: d.kernel.release,
      cmdline: d.kernel.cmdline ?? 'console=ttyS0,115200',
      initramfsModules: d.kernel.initramfsModules ?? [],
      usrModules: d.kernel.usrModules ?? ['.'],
    },
    node: { version: d.node.version },
    packages: d.packages,
    exclude: d.exclude ?? [],
    partitions: sizes,
    filesDir: d.files ? resolve(dirname(file), d.files) : null,
    oem: d.oem
      ? {
          id: d.oem.id,
          kernelArgs: d.oem.kernelArgs ?? '',
          cloudConfig: d.oem.cloudConfig ? resolve(dirname(file), d.oem.cloudConfig) : null,
        }
      : null,
    units: { enable: d.units?.enable ?? [] },
    update: { publicKey: resolve(dirname(file), d.update.publicKey) },
  };
}

/** Reads and validates an image definition file (YAML or JSON). */
export function loadImageDef(file: string): ImageDef {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const c = cause as NodeJS.ErrnoException;
    throw new BuildError('EIMAGEDEF', `cannot read image definition ${path}: ${c.code ?? c.message}`, { path, cause });
  }
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: path, schema: yaml.CORE_SCHEMA });
  } catch (cause) {
    throw new BuildError('EIMAGEDEF', `cannot parse image definition ${path}: ${(cause as Error).message}`, {
      path,
      cause,
    });
  }
  return checkImageDef(doc, path);
}
