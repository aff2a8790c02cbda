// GUIDs as GPT stores them: canonical strings, on-disk bytes, and stable GUIDs derived from a seed.
import { createHash } from 'node:crypto';

/** Partition type: EFI system partition (ESP, vfat). */
export const GPT_TYPE_EFI_SYSTEM = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
/** Partition type: BIOS boot partition, where GRUB i386-pc keeps core.img. */
export const GPT_TYPE_BIOS_BOOT = '21686148-6449-6E6F-744E-656564454649';
/** Partition type: CoreOS /usr (USR-A, USR-B). */
export const GPT_TYPE_COREOS_USR = '5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6';
/** Partition type: CoreOS resizable root (ROOT, grown on first boot). */
export const GPT_TYPE_COREOS_RESIZE = '3884DD41-8582-4404-B9A8-E9B84F2DF50E';
/** Partition type: generic Linux filesystem data (OEM). */
export const GPT_TYPE_LINUX_FILESYSTEM = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
/** The all-zero GUID, which GPT uses to mark an unused entry. */
export const GUID_ZERO = '00000000-0000-0000-0000-000000000000';

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `value` is a canonical 8-4-4-4-12 GUID string (any case). */
export function isGuid(value: unknown): value is string {
  return typeof value === 'string' && GUID_RE.test(value);
}

/** Encodes a GUID string into the 16 bytes GPT stores (mixed-endian, as EFI_GUID). */
export function guidToBytes(guid: string): Buffer {
  if (!isGuid(guid)) {
    throw new TypeError(`cannot encode GUID: expected 8-4-4-4-12 hex digits, received ${JSON.stringify(guid)}`);
  }
  const hex = guid.replace(/-/g, '');
  const out = Buffer.from(hex, 'hex');
  // Why: EFI_GUID is {u32 Data1, u16 Data2, u16 Data3, u8 Data4[8]} in little-endian, so the
  // first three groups of the string are byte-swapped on disk while the last two are not.
  out.subarray(0, 4).reverse();
  out.subarray(4, 6).reverse();
  out.subarray(6, 8).reverse();
  return out;
}

/** Decodes 16 GPT-ordered bytes into an uppercase canonical GUID string. */
export function bytesToGuid(buf: Buffer): string {
  if (!Buffer.isBuffer(buf) || buf.length !== 16) {
    const got = Buffer.isBuffer(buf) ? `${buf.length} bytes` : typeof buf;
    throw new TypeError(`cannot decode GUID: expected a 16-byte Buffer, received ${got}`);
  }
  const b = Buffer.from(buf);
  b.subarray(0, 4).reverse();
  b.subarray(4, 6).reverse();
  b.subarray(6, 8).reverse();
  return formatRfcBytes(b);
}

/**
 * Derives a stable GUID from a seed and a name: the first 16 bytes of sha256(seed + '\0' + name),
 * shaped as an RFC 4122 version 4 (random) GUID so tools that check the version bits accept it.
 */
export function deterministicGuid(seed: string, name: string): string {
  if (typeof seed !== 'string')
    throw new TypeError(`cannot derive GUID: seed must be a string, received ${typeof seed}`);
  if (typeof name !== 'string')
    throw new TypeError(`cannot derive GUID: name must be a string, received ${typeof name}`);
  const digest = createHash('sha256').update(`${seed}\0${name}`, 'utf8').digest();
  const b = digest.subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x40; // version 4
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10xx (RFC 4122)
  return formatRfcBytes(b);
}

// Formats 16 bytes in string (big-endian) order as 8-4-4-4-12 uppercase hex.
function formatRfcBytes(b: Buffer): string {
  const h = b.toString('hex').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
