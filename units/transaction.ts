// Turns one request (start/stop/restart a unit) into a transaction of jobs the way systemd's
// transaction.c does: pull in dependencies, drop no-op jobs, merge, break ordering cycles. Pure.
import type { UnitConfig } from './types.js';

/** What the manager does to one unit. A restart is run as one job: stop, then start. */
export type JobType = 'start' | 'stop' | 'verify-active' | 'restart';

/** The jobs one request turns into and how they are ordered; `jobs` is empty when it failed. */
export interface Transaction {
  anchor: string;
  jobs: Map<string, JobType>;
  /** [first, then] between two non-stop jobs: `first` finishes before `then` begins. */
  order: [before: string, after: string][];
  /** [first, then] where a stop job is involved: stops run in reverse order, and before starts. */
  stopOrder: [before: string, after: string][];
  /** Unit -> the units in the transaction whose start needs it (Requires=, BindsTo=, Requisite=). */
  requiredBy: Map<string, string[]>;
  /** Jobs dropped because a hard dependency cannot be had; an entry for the anchor fails it all. */
  failures: { unit: string; reason: string; cycle?: string[] }[];
  brokenCycles: { cycle: string[]; deleted: string }[];
  /** Wants= (and .wants/ links) naming units that do not exist: ignored, as systemd does. */
  missingWants: string[];
}

interface Job {
  unit: string;
  type: JobType;
  matters: boolean;
}
interface Link {
  subject: Job;
  object: Job;
  matters: boolean;
  conflicts: boolean;
}

const startish = (t: JobType | undefined) => t !== undefined && t !== 'stop';

/** Builds the transaction for `anchor`; `active` holds the units running now (none at boot). */
export function buildTransaction(
  units: ReadonlyMap<string, UnitConfig>,
  anchor: { unit: string; job: 'start' | 'stop' | 'restart' },
  active: ReadonlySet<string> = new Set(),
): Transaction {
  const g = graph(units);
  const name = (n: string) => units.get(n)?.name ?? n;
  const jobs = new Map<string, Job[]>();
  let links: Link[] = [];
  const broken = new Map<Job, string>();
  const failures: Transaction['failures'] = [];
  const missingWants = new Set<string>();
  const brokenCycles: Transaction['brokenCycles'] = [];
  let anchorJob: Job | undefined;
  // The whole transaction fails: no jobs, and the anchor's failure (once) says why.
  const fail = (reason: string, cycle?: string[]): Transaction => {
    const unit = name(anchor.unit);
    if (!failures.some((f) => f.unit === unit && f.reason === reason))
      failures.push({ unit, reason, ...(cycle && { cycle }) });
    const none = { jobs: new Map(), order: [], stopOrder: [], requiredBy: new Map() };
    return { anchor: unit, ...none, failures, brokenCycles, missingWants: [...missingWants] };
  };

  // Deletes a job; with `deps`, also the jobs that hard-needed it (systemd's delete_dependencies).
  const del = (j: Job, deps: boolean): Job[] => {
    const list = jobs.get(j.unit)?.filter((k) => k !== j) ?? [];
    if (list.length) jobs.set(j.unit, list);
    else jobs.delete(j.unit);
    const needers = links.filter((l) => l.object === j && l.matters).map((l) => l.subject);
    links = links.filter((l) => l.object !== j && l.subject !== j);
    const gone = [j];
    if (deps) for (const s of needers) if (jobs.get(s.unit)?.includes(s)) gone.push(...del(s, true));
    return gone;
  };
  // Drops jobs nothing pulls in any more (systemd's transaction_collect_garbage).
  const gc = () => {
    for (let again = true; again;) {
      again = false;
      for (const j of [...jobs.values()].flat()) {
        if (j !== anchorJob && !links.some((l) => l.object === j)) {
          del(j, true);
          again = true;
        }
      }
    }
  };

  // Adds a job and, recursively, the jobs it pulls in; returns why it cannot be had, or null.
  const add = (type: JobType, unit: string, by: Job | null, matters: boolean, conflicts = false): string | null => {
    const u = units.get(unit);
    if (!u) return type === 'stop' ? null : `Unit ${unit} not found.`;
    if (u.masked && type !== 'stop') return `Unit ${unit} is masked.`;
    let job = jobs.get(u.name)?.find((j) => j.type === type);
    const isNew = !job;
    if (!job) {
      job = { unit: u.name, type, matters: false };
      jobs.set(u.name, [...(jobs.get(u.name) ?? []), job]);
    }
    if (by) links.push({ subject: by, object: job, matters, conflicts });
    else anchorJob = job;
    if (!isNew) return broken.get(job) ?? null;
    const j = job;
    const hard = (t: JobType, deps: string[], conflict = false) => {
      for (const d of deps) {
        const why = add(t, d, j, true, conflict);
        if (why) {
          broken.set(j, why);
          failures.push({ unit: j.unit, reason: why });
          return why;
        }
      }
      return null;
    };
    const d = u.deps;
    if (type === 'start' || type === 'restart') {
      const why = hard('start', [...d.requires, ...d.bindsTo]);
      if (why) return why;
      for (const w of [...d.wants, ...(d.wantedByLinks ?? [])])
        if (add('start', w, j, false) && !units.has(w)) missingWants.add(w);
      const why2 = hard('verify-active', d.requisite) ?? hard('stop', d.conflicts, true);
      if (why2) return why2;
      for (const c of g.conflictedBy.get(u.name) ?? []) add('stop', c, j, false);
    }
    if (type === 'stop' || type === 'restart') {
      // A restart propagates as try-restart (a no-op for inactive units), never as a stop.
      const dependents = g.dependents.get(u.name) ?? [];
      const why =
        type === 'restart'
          ? hard(
              'restart',
              dependents.filter((x) => active.has(x)),
            )
          : hard('stop', dependents);
      if (why) return why;
    }
    return null;
  };

  if (!units.has(anchor.unit))
    return fail(`Unit ${anchor.unit} ${anchor.job === 'stop' ? 'not loaded' : 'not found'}.`);
  const anchorWhy = add(anchor.job, anchor.unit, null, true);
  if (anchorWhy || !anchorJob) return fail(anchorWhy ?? `BUG: no anchor job for ${anchor.unit}`);
  for (const [j, why] of broken) {
    for (const k of del(j, true).slice(1)) if (!broken.has(k)) failures.push({ unit: k.unit, reason: why });
  }
  if (!jobs.get(anchorJob.unit)?.includes(anchorJob))
    throw new Error(`BUG: dropping failed jobs deleted the anchor ${anchorJob.unit}`);
  gc();

  // Which jobs matter: reached from the anchor through hard links only.
  const queue = [anchorJob];
  for (let j = queue.pop(); j; j = queue.pop()) {
    if (j.matters) continue;
    j.matters = true;
    for (const l of links) if (l.subject === j && l.matters) queue.push(l.object);
  }
  const redundant = (j: Job) =>
    j !== anchorJob && (j.type === 'stop' ? !active.has(j.unit) : j.type !== 'restart' && active.has(j.unit));
  const dropRedundant = () => {
    for (const list of [...jobs.values()]) if (list.every(redundant)) for (const j of list) del(j, false);
  };
  dropRedundant();
  gc();

  // Merge each unit's jobs into one; a stop cannot merge with anything (delete_one_unmergeable_job).
  for (let again = true; again;) {
    again = false;
    for (const [unit, list] of jobs) {
      const stop = list.find((j) => j.type === 'stop');
      const other = list.find((j) => j.type !== 'stop');
      if (!stop || !other) continue;
      const conflicted = links.some((l) => l.object === stop && l.conflicts);
      const victim =
        !stop.matters && !other.matters
          ? conflicted
            ? other
            : stop
          : !stop.matters
            ? stop
            : !other.matters
              ? other
              : null;
      if (!victim) {
        return fail(
          `Transaction contains conflicting jobs 'stop' and '${other.type}' for ${unit}. ` +
            'Probably contradicting requirement dependencies configured.',
        );
      }
      del(victim, true);
      if (!jobs.get(anchorJob.unit)?.includes(anchorJob))
        throw new Error(`BUG: resolving a job conflict on ${unit} deleted the anchor`);
      gc();
      again = true;
      break;
    }
  }
  for (const list of jobs.values()) {
    if (list.length < 2) continue;
    const [keep, ...rest] = list.includes(anchorJob) ? [anchorJob, ...list.filter((j) => j !== anchorJob)] : list;
    keep.type = list.some((j) => j.type === 'restart')
      ? 'restart'
      : list.some((j) => j.type === 'start')
        ? 'start'
        : keep.type;
    keep.matters = list.some((j) => j.matters);
    for (const l of links) {
      if (rest.includes(l.subject)) l.subject = keep;
      if (rest.includes(l.object)) l.object = keep;
    }
    list.splice(0, list.length, keep);
  }
  links = links.filter((l) => l.subject !== l.object);
  dropRedundant();

  // Ordering cycles: delete a job in the cycle that does not matter to the anchor, or fail.
  for (;;) {
    gc();
    const cycle = findCycle([...jobs.keys()], (u) => effectiveNext(u, g, (x) => jobs.get(x)?.[0].type));
    if (!cycle) break;
    const victim = [...cycle]
      .reverse()
      .map((u) => jobs.get(u)![0])
      .find((j) => !j.matters);
    if (!victim) return fail(`Transaction order is cyclic: ${[...cycle, cycle[0]].join(' → ')}`, cycle);
    del(victim, true);
    if (!jobs.has(anchorJob.unit))
      throw new Error(`BUG: breaking an ordering cycle deleted the anchor ${anchorJob.unit}`);
    brokenCycles.push({ cycle, deleted: victim.unit });
  }

  const typeOf = new Map([...jobs].map(([u, [j]]) => [u, j.type] as const));
  const order: Transaction['order'] = [];
  const stopOrder: Transaction['stopOrder'] = [];
  for (const u of typeOf.keys()) {
    for (const v of effectiveNext(u, g, (x) => typeOf.get(x))) {
      (typeOf.get(u) === 'stop' || typeOf.get(v) === 'stop' ? stopOrder : order).push([u, v]);
    }
  }
  const requiredBy = new Map<string, string[]>();
  for (const [u, t] of typeOf) {
    if (!startish(t)) continue;
    const d = units.get(u)!.deps;
    for (const dep of new Set([...d.requires, ...d.bindsTo, ...d.requisite].map(name))) {
      if (typeOf.has(dep) && dep !== u) requiredBy.set(dep, [...(requiredBy.get(dep) ?? []), u]);
    }
  }
  return {
    anchor: anchorJob.unit,
    jobs: typeOf,
    order,
    stopOrder,
    requiredBy,
    failures,
    brokenCycles,
    missingWants: [...missingWants],
  };
}

/** The jobs that may run now: all their ordering predecessors finished (either way). */
export function ready(
  tx: Transaction,
  done: ReadonlySet<string>,
  failed: ReadonlySet<string>,
  running: ReadonlySet<string> = new Set(),
): string[] {
  const finished = (u: string) => done.has(u) || failed.has(u);
  const blocked = new Set([...tx.order, ...tx.stopOrder].filter(([first]) => !finished(first)).map(([, then]) => then));
  return [...tx.jobs.keys()].filter((u) => !finished(u) && !running.has(u) && !blocked.has(u));
}

/** The start jobs that fail with result 'dependency' when `failedUnit`'s job fails (not via Wants=). */
export function dependentsToFail(tx: Transaction, failedUnit: string): string[] {
  const out: string[] = [];
  const queue = [failedUnit];
  for (let u = queue.shift(); u !== undefined; u = queue.shift()) {
    for (const d of tx.requiredBy.get(u) ?? []) {
      if (d !== failedUnit && !out.includes(d) && startish(tx.jobs.get(d))) {
        out.push(d);
        queue.push(d);
      }
    }
  }
  return out;
}

interface Graph {
  dependents: Map<string, string[]>;
  conflictedBy: Map<string, string[]>;
  /** u -> the units u is ordered before, and u -> the units ordered before u (After= and Before= merged). */
  before: Map<string, string[]>;
  after: Map<string, string[]>;
}

/** Reverse dependency indexes, by canonical unit name (aliases resolved). */
function graph(units: ReadonlyMap<string, UnitConfig>): Graph {
  const g: Graph = { dependents: new Map(), conflictedBy: new Map(), before: new Map(), after: new Map() };
  const put = (m: Map<string, string[]>, k: string, v: string) => {
    const l = m.get(k) ?? [];
    if (k !== v && !l.includes(v)) m.set(k, [...l, v]);
  };
  for (const u of new Set(units.values())) {
    const d = u.deps;
    const name = (n: string) => units.get(n)?.name ?? n;
    // Stop propagates to units that Requires=/BindsTo=/Requisite=/PartOf= this one (systemd PROPAGATE_STOP).
    for (const x of [...d.requires, ...d.bindsTo, ...d.requisite, ...d.partOf]) put(g.dependents, name(x), u.name);
    for (const x of d.conflicts) put(g.conflictedBy, name(x), u.name);
    for (const x of d.before) {
      put(g.before, u.name, name(x));
      put(g.after, name(x), u.name);
    }
    for (const x of d.after) {
      put(g.before, name(x), u.name);
      put(g.after, u.name, name(x));
    }
  }
  return g;
}

/** Jobs that must wait for `u`'s job: Before= edges, reversed when the later job is a stop. */
function effectiveNext(u: string, g: Graph, type: (u: string) => JobType | undefined): string[] {
  const t = type(u);
  if (t === undefined) return [];
  const out = (g.before.get(u) ?? []).filter((v) => type(v) !== undefined && type(v) !== 'stop');
  if (t === 'stop') for (const a of g.after.get(u) ?? []) if (type(a) !== undefined && !out.includes(a)) out.push(a);
  return out;
}

/** One cycle in the graph (its members in order), or null when it is a DAG. */
function findCycle(nodes: string[], next: (u: string) => string[]): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (u: string): string[] | null => {
    state.set(u, 'open');
    path.push(u);
    for (const v of next(u)) {
      if (state.get(v) === 'open') return path.slice(path.indexOf(v));
      if (!state.has(v)) {
        const c = visit(v);
        if (c) return c;
      }
    }
    path.pop();
    state.set(u, 'done');
    return null;
  };
  for (const u of nodes)
    if (!state.has(u)) {
      const c = visit(u);
      if (c) return c;
    }
  return null;
}
