// What the container verbs share: where state lives (--root), the image store, and tables.
import { join } from 'node:path';
import { DEFAULT_ROOT, familiarRef, ImageStore, type ImageRecord } from '../containers/store.js';

/** The --root option every container verb takes. */
export const ROOT_OPTION = { root: { type: 'string' as const, default: DEFAULT_ROOT } };

/** The image store under --root. */
export function storeAt(v: Record<string, unknown>): ImageStore {
  return new ImageStore(String(v.root ?? DEFAULT_ROOT));
}

/** Where pulled blobs go: the store's own blob directory. */
export const blobDirOf = (v: Record<string, unknown>) => join(String(v.root ?? DEFAULT_ROOT), 'blobs');

/** Pads columns like docker's tables: every column but the last to its widest cell. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return (
    all
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** "12 seconds", "3 minutes", "2 hours", "5 days": docker's human durations. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s <= 1 ? 'Less than a second' : `${s} seconds`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.round(m / 60);
  if (h < 48) return h === 1 ? 'About an hour' : `${h} hours`;
  return `${Math.round(h / 24)} days`;
}

/** "1.2MB"-style sizes, as docker prints them (decimal units). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes,
    i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 && i ? v.toFixed(2) : v < 100 && i ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

/** An image's rows for `keel images`: one per ref, or one <none> row when it has none. */
export function imageRows(i: ImageRecord, now = Date.now()): string[][] {
  const id = i.id.replace(/^sha256:/, '').slice(0, 12);
  const createdAt = Date.parse(i.created || i.config?.created || new Date(now).toISOString());
  const created = `${humanDuration(now - createdAt)} ago`;
  const refs = i.refs.length ? i.refs.map(familiarRef) : ['<none>:<none>'];
  return refs.map((r) => {
    const at = r.lastIndexOf(':');
    const [repo, tag] = at > r.lastIndexOf('/') ? [r.slice(0, at), r.slice(at + 1)] : [r, '<none>'];
    return [repo, tag, id, created, humanSize(i.size)];
  });
}
