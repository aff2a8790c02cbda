// locksmith's reboot lock: a counting semaphore stored as one JSON document in etcd's v2 keys API,
// changed only by compare-and-swap, so that at most `max` machines of a group reboot at a time.
// Same key and document as coreos/locksmith (lock/etcd.go, lock/semaphore.go), so keel machines
// and locksmithctl share one lock:
//   coreos.com/updateengine/rebootlock/semaphore                 (no group)
//   coreos.com/updateengine/rebootlock/groups/GROUP/semaphore    (GROUP as Go's url.QueryEscape)
//   {"semaphore":1,"max":1,"holders":[]}      semaphore = free slots, holders = machine ids (sorted)
// etcd 3.x serves this API only when started with --enable-v2=true.
import { KeelError } from '../lib/errors.js';
import { isHttpError, request } from '../lib/http.js';

export const KEY_PREFIX = 'coreos.com/updateengine/rebootlock';

export interface Semaphore {
  semaphore: number;
  max: number;
  holders: string[];
}

export interface RebootLockOptions {
  endpoints: string[];
  group: string | null;
  /** This machine's id (/etc/machine-id), the name that goes into `holders`. */
  id: string;
  username?: string;
  password?: string;
  /** Per request and endpoint; default 5000. */
  timeoutMs?: number;
}

/**
 * code: 'unreachable' (no endpoint answered), 'http' (etcd refused), 'bad-value' (the key is no semaphore),
 * 'contended'.
 */
export class EtcdLockError extends KeelError {
  declare readonly code: 'unreachable' | 'http' | 'bad-value' | 'contended';
  constructor(
    code: 'unreachable' | 'http' | 'bad-value' | 'contended',
    readonly key: string,
    message: string,
    readonly endpoint?: string,
  ) {
    super(code, message);
    this.name = 'EtcdLockError';
  }
}

/** Go's url.QueryEscape: keeps A-Z a-z 0-9 - _ . ~, a space becomes "+", the rest %XX. */
function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

/** The semaphore's etcd key for a group (null or "" = the default, ungrouped lock), as locksmith names it. */
export function semaphoreKey(group: string | null): string {
  return group ? `${KEY_PREFIX}/groups/${queryEscape(group)}/semaphore` : `${KEY_PREFIX}/semaphore`;
}

interface Reply {
  status: number;
  body: string;
  endpoint: string;
}
/** The parts of a v2 answer we use ({} when the body is no JSON). */
interface V2Body {
  errorCode?: number;
  message?: string;
  node?: { dir?: boolean; value?: string; modifiedIndex?: number };
}
export interface EtcdNode {
  value: string;
  index: number;
  endpoint: string;
}
/** A v2 write's precondition: the modifiedIndex we read, or "must not exist yet". */
type Precondition = { prevIndex: number } | { prevExist: false };

// etcd v2 error codes (etcd/error/error.go) that mean "someone else changed it first".
const KEY_NOT_FOUND = 100;
const COMPARE_FAILED = 101;
const NODE_EXIST = 105;
/** A v2 answer about one key is small; a semaphore is a few hundred bytes. */
const MAX_REPLY_BYTES = 4 << 20;

function parseBody(body: string): V2Body {
  try {
    const j: unknown = JSON.parse(body);
    return j && typeof j === 'object' ? (j as V2Body) : {};
  } catch {
    return {};
  }
}

/** A minimal etcd v2 keys-API client: GET and conditional PUT of one key, endpoints tried in order. */
export class EtcdV2 {
  /** The endpoint that answered last is tried first next time (the Go client pins one likewise). */
  private first = 0;

  constructor(
    private readonly endpoints: string[],
    private readonly auth: string | null,
    private readonly timeoutMs: number,
  ) {
    if (endpoints.length === 0) throw new KeelError('EARG', 'cannot reach etcd: no endpoints given');
  }

  /** The key's value and modifiedIndex, or null if it does not exist. */
  async get(key: string): Promise<EtcdNode | null> {
    const r = await this.request('GET', key);
    const j = parseBody(r.body);
    if (r.status === 404 && j.errorCode === KEY_NOT_FOUND) return null;
    if (r.status !== 200) throw this.httpError(r, key, j);
    const n = j.node;
    if (n?.dir)
      throw new EtcdLockError(
        'bad-value',
        key,
        `etcd key ${key} at ${r.endpoint} is a directory, not a value`,
        r.endpoint,
      );
    if (typeof n?.value !== 'string' || typeof n.modifiedIndex !== 'number') {
      throw new EtcdLockError(
        'http',
        key,
        `etcd at ${r.endpoint} answered GET ${key} with no node: ${r.body.slice(0, 200)}`,
        r.endpoint,
      );
    }
    return { value: n.value, index: n.modifiedIndex, endpoint: r.endpoint };
  }

  /** Writes the key if the precondition holds; false when another writer got there first. */
  async put(key: string, value: string, cond: Precondition): Promise<boolean> {
    const form = new URLSearchParams({ value });
    if ('prevIndex' in cond) form.set('prevIndex', String(cond.prevIndex));
    else form.set('prevExist', 'false');
    const r = await this.request('PUT', key, form.toString());
    if (r.status === 200 || r.status === 201) return true;
    const j = parseBody(r.body);
    // 412 for a failed compare or an existing node; 404 when the key vanished since we read it.
    if (j.errorCode !== undefined && [COMPARE_FAILED, NODE_EXIST, KEY_NOT_FOUND].includes(j.errorCode)) return false;
    throw this.httpError(r, key, j);
  }

  /** Tries each endpoint once, starting at the last good one; fails naming every endpoint's error. */
  private async request(method: string, key: string, body?: string): Promise<Reply> {
    const failures: string[] = [];
    for (let n = 0; n < this.endpoints.length; n++) {
      const i = (this.first + n) % this.endpoints.length;
      const endpoint = this.endpoints[i];
      try {
        const r = await this.send(endpoint, method, key, body);
        // A 5xx is this member's trouble (no leader, shutting down): another may answer. Sending a
        // conditional PUT again elsewhere is safe: had it landed, the retry's precondition fails.
        if (r.status >= 500) {
          failures.push(`${endpoint}: HTTP ${r.status} ${r.body.trim().slice(0, 200)}`);
          continue;
        }
        this.first = i;
        return r;
      } catch (e) {
        failures.push(`${endpoint}: ${(e as Error).message}`);
      }
    }
    const ep = this.endpoints.length === 1 ? this.endpoints[0] : undefined;
    throw new EtcdLockError('unreachable', key, `etcd unreachable for key ${key}: ${failures.join('; ')}`, ep);
  }

  private async send(endpoint: string, method: string, key: string, body?: string): Promise<Reply> {
    // Each key segment is escaped on its own, so a group's "%2F" stays part of its name (as in Go).
    const url = endpoint.replace(/\/+$/, '') + '/v2/keys/' + key.split('/').map(encodeURIComponent).join('/');
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (this.auth) headers.authorization = this.auth;
    try {
      const res = await request(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        timeoutMs: this.timeoutMs,
      });
      return { status: res.status, body: await res.text(MAX_REPLY_BYTES), endpoint };
    } catch (e) {
      // request() names method and URL; the per-endpoint list wants only the reason.
      throw isHttpError(e) ? new Error(e.reason, { cause: e }) : e;
    }
  }

  private httpError(r: Reply, key: string, j: V2Body): EtcdLockError {
    const what = j.message
      ? `${j.message}${j.errorCode ? ` (etcd error ${j.errorCode})` : ''}`
      : r.body.trim().slice(0, 200);
    // etcd 3.x without --enable-v2 has no /v2/keys route at all.
    const hint = r.status === 404 && j.errorCode === undefined ? ' (is etcd started with --enable-v2=true?)' : '';
    return new EtcdLockError(
      'http',
      key,
      `etcd at ${r.endpoint} refused ${key}: HTTP ${r.status} ${what}${hint}`,
      r.endpoint,
    );
  }
}

const isCount = (n: unknown): n is number => Number.isInteger(n);

/** Parses the semaphore document; locksmith writes "holders":null for an empty list. */
function parseSemaphore({ value, endpoint }: EtcdNode, key: string): Semaphore {
  const bad = (why: string) =>
    new EtcdLockError(
      'bad-value',
      key,
      `etcd key ${key} at ${endpoint} holds no reboot semaphore (${why}): ${value.slice(0, 200)}`,
      endpoint,
    );
  let j: { semaphore?: unknown; max?: unknown; holders?: unknown } | null;
  try {
    j = JSON.parse(value);
  } catch (e) {
    throw bad(`bad JSON: ${(e as Error).message}`);
  }
  if (!j || typeof j !== 'object' || !isCount(j.semaphore) || !isCount(j.max))
    throw bad('"semaphore" and "max" must be integers');
  const holders = j.holders ?? [];
  if (!Array.isArray(holders) || !holders.every((h) => typeof h === 'string'))
    throw bad('"holders" must be a list of machine ids');
  return { semaphore: j.semaphore as number, max: j.max as number, holders };
}

const DEFAULT_SEMAPHORE: Semaphore = { semaphore: 1, max: 1, holders: [] };
/** Attempts at a read-modify-CAS cycle before giving up; each lost race means another machine progressed. */
const MAX_ATTEMPTS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** This machine's handle on the reboot lock of its group. */
export class RebootLock {
  readonly key: string;
  private readonly etcd: EtcdV2;
  private readonly id: string;

  constructor(o: RebootLockOptions) {
    if (!o.id) throw new KeelError('EARG', 'cannot take the reboot lock: an empty machine id cannot hold it');
    this.key = semaphoreKey(o.group);
    this.id = o.id;
    const auth =
      o.username !== undefined ? 'Basic ' + Buffer.from(`${o.username}:${o.password ?? ''}`).toString('base64') : null;
    this.etcd = new EtcdV2(o.endpoints, auth, o.timeoutMs ?? 5000);
  }

  /**
   * Takes a slot: true when held (already a holder counts), false when every slot is taken.
   * Unlike locksmith, which checks for a free slot before looking for itself and so answers
   * "semaphore is at 0" to a holder asking again, a holder here always gets true.
   */
  async lock(): Promise<boolean> {
    return this.update((s) => {
      if (s.holders.includes(this.id)) return { result: true };
      if (s.semaphore <= 0) return { result: false };
      const holders = [...s.holders, this.id].sort(); // locksmith keeps them sorted
      return { result: true, next: { semaphore: s.semaphore - 1, max: s.max, holders } };
    }, true);
  }

  /** Gives the slot back; a no-op when this machine holds none (or the semaphore does not exist). */
  async unlock(): Promise<void> {
    await this.update((s) => {
      if (!s.holders.includes(this.id)) return { result: undefined };
      const holders = s.holders.filter((h) => h !== this.id);
      return { result: undefined, next: { semaphore: s.semaphore + 1, max: s.max, holders } };
    }, false);
  }

  /** The semaphore as stored; locksmith's initial one when the key does not exist yet (nothing is written). */
  async status(): Promise<Semaphore> {
    const node = await this.etcd.get(this.key);
    return node ? parseSemaphore(node, this.key) : { ...DEFAULT_SEMAPHORE, holders: [] };
  }

  /**
   * Read, decide, compare-and-swap on the modifiedIndex read; a lost race starts over after a
   * short random pause so that contending machines spread out. With `create`, a missing key is
   * first created holding the initial semaphore (prevExist=false: exactly one creator wins), as
   * locksmith's Init does; without it, a missing key is decided on as the initial semaphore.
   */
  private async update<T>(decide: (s: Semaphore) => { result: T; next?: Semaphore }, create: boolean): Promise<T> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const node = await this.etcd.get(this.key);
      if (!node && !create) return decide({ ...DEFAULT_SEMAPHORE, holders: [] }).result;
      if (!node) {
        // false: another created it
        await this.etcd.put(this.key, JSON.stringify(DEFAULT_SEMAPHORE), { prevExist: false });
        continue;
      }
      const d = decide(parseSemaphore(node, this.key));
      if (!d.next) return d.result;
      if (await this.etcd.put(this.key, JSON.stringify(d.next), { prevIndex: node.index })) return d.result;
      await sleep(5 + Math.random() * 20);
    }
    throw new EtcdLockError(
      'contended',
      this.key,
      `gave up on etcd key ${this.key} after ${MAX_ATTEMPTS} conflicting updates`,
    );
  }
}
