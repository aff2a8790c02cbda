// Whiteouts, the way layers say "deleted": OCI spells them `.wh.NAME` (NAME is gone) and
// `.wh..wh..opq` (nothing below this directory shows); overlayfs spells them as a character device
// 0:0 and the xattr trusted.overlay.opaque=y. Made and read through the native helper.
import * as fs from 'node:fs';
import { isNativeError, native } from '../native/native.js';
import { ContainerError } from './errors.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';

/** An overlayfs whiteout at `abs`: a character device 0:0 (mode 0, as docker and containerd make them). */
export function makeWhiteout(abs: string): void {
  try {
    native.mknod(abs, fs.constants.S_IFCHR, 0);
  } catch (e) {
    throw nativeFailure(e, `cannot create whiteout ${abs}`);
  }
}

/** Marks the directory `abs` opaque: overlayfs shows nothing of it from lower layers. */
export function setOpaque(abs: string): void {
  try {
    native.lsetxattr(abs, OPAQUE_XATTR, 'y', 0);
  } catch (e) {
    throw nativeFailure(e, `cannot mark ${abs} opaque`);
  }
}

/** True when the directory `abs` is marked opaque; false too where xattrs are not supported. */
export function isOpaque(abs: string): boolean {
  try {
    return native.lgetxattr(abs, OPAQUE_XATTR).toString('latin1') === 'y';
  } catch (e) {
    if (isNativeError(e, 'ENODATA') || isNativeError(e, 'EOPNOTSUPP')) return false;
    throw nativeFailure(e, `cannot read the opaque mark of ${abs}`);
  }
}

/** A whiteout device as lstat sees it: the only character device the unpacker makes. */
export function isWhiteout(st: fs.Stats | null): boolean {
  return st !== null && st.isCharacterDevice() && st.rdev === 0;
}

function nativeFailure(e: unknown, what: string): ContainerError {
  return new ContainerError('EEXTRACT', `${what}: ${(e as Error).message}`, { cause: e });
}
