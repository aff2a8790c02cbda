// Transactions over small unit maps: pull-in, missing and masked units, conflicts, stop/restart
// propagation, readiness, dependency failure and ordering cycles.
import assert from 'node:assert/strict';
import { withDefaultDependencies } from '../../units/defaults.js';
import { buildTransaction, dependentsToFail, ready, type Transaction } from '../../units/transaction.js';
import type { UnitConfig } from '../../units/types.js';
import { unit } from './unit-fixture.js';

const units = (...us: UnitConfig[]) => new Map(us.map((u) => [u.name, u]));
const jobs = (tx: Transaction) => Object.fromEntries(tx.jobs);

describe('units/transaction', () => {
  describe('pull-in', () => {
    it('pulls in Requires=, Wants=, BindsTo= recursively and Requisite= as verify-active', () => {
      const tx = buildTransaction(
        units(
          unit('t.target', { requires: ['a.service'], wants: ['b.service'] }),
          unit('a.service', { bindsTo: ['c.service'], requisite: ['r.service'] }),
          unit('b.service', { wants: ['d.service'] }),
          unit('c.service'),
          unit('d.service'),
          unit('r.service'),
          unit('unrelated.service'),
        ),
        { unit: 't.target', job: 'start' },
      );
      assert.deepEqual(jobs(tx), {
        't.target': 'start',
        'a.service': 'start',
        'c.service': 'start',
        'r.service': 'verify-active',
        'b.service': 'start',
        'd.service': 'start',
      });
      assert.deepEqual(tx.failures, []);
    });

    it('ignores Wants= (and .wants/ links) of missing units and records them', () => {
      const tx = buildTransaction(
        units(
          unit('t.target', { wants: ['gone.service'], wantedByLinks: ['a.service', 'gone2.service'] }),
          unit('a.service'),
        ),
        { unit: 't.target', job: 'start' },
      );
      assert.deepEqual(jobs(tx), { 't.target': 'start', 'a.service': 'start' });
      assert.deepEqual(tx.missingWants, ['gone.service', 'gone2.service']);
      assert.deepEqual(tx.failures, []);
    });

    it('fails the whole transaction when a required unit does not exist', () => {
      const tx = buildTransaction(
        units(unit('t.target', { requires: ['a.service'] }), unit('a.service', { requires: ['gone.service'] })),
        { unit: 't.target', job: 'start' },
      );
      assert.equal(tx.jobs.size, 0);
      assert.deepEqual(tx.failures, [
        { unit: 'a.service', reason: 'Unit gone.service not found.' },
        { unit: 't.target', reason: 'Unit gone.service not found.' },
      ]);
    });

    it('fails on a masked required unit, but only drops a wanted unit whose requirement is masked', () => {
      const masked = unit('m.service', {}, { masked: true });
      const hard = buildTransaction(units(unit('a.service', { requires: ['m.service'] }), masked), {
        unit: 'a.service',
        job: 'start',
      });
      assert.equal(hard.jobs.size, 0);
      assert.deepEqual(hard.failures.at(-1), { unit: 'a.service', reason: 'Unit m.service is masked.' });

      const soft = buildTransaction(
        units(
          unit('t.target', { wants: ['a.service', 'ok.service'] }),
          unit('a.service', { requires: ['m.service', 'dep.service'] }),
          unit('dep.service'),
          unit('ok.service'),
          masked,
        ),
        { unit: 't.target', job: 'start' },
      );
      assert.deepEqual(jobs(soft), { 't.target': 'start', 'ok.service': 'start' });
      assert.deepEqual(soft.failures, [{ unit: 'a.service', reason: 'Unit m.service is masked.' }]);
    });

    it('fails when the anchor itself is missing', () => {
      const tx = buildTransaction(units(), { unit: 'nope.service', job: 'start' });
      assert.deepEqual(tx.failures, [{ unit: 'nope.service', reason: 'Unit nope.service not found.' }]);
    });

    it('drops start jobs of units already active, but keeps the anchor', () => {
      const tx = buildTransaction(
        units(unit('a.service', { requires: ['b.service'] }), unit('b.service')),
        { unit: 'a.service', job: 'start' },
        new Set(['a.service', 'b.service']),
      );
      assert.deepEqual(jobs(tx), { 'a.service': 'start' });
    });
  });

  describe('conflicts', () => {
    it('stops units the started unit conflicts with, and units that conflict with it', () => {
      const tx = buildTransaction(
        units(
          unit('a.service', { conflicts: ['b.service'] }),
          unit('b.service'),
          unit('c.service', { conflicts: ['a.service'] }),
          unit('idle.service', { conflicts: ['a.service'] }),
        ),
        { unit: 'a.service', job: 'start' },
        new Set(['b.service', 'c.service']),
      );
      assert.deepEqual(jobs(tx), { 'a.service': 'start', 'b.service': 'stop', 'c.service': 'stop' });
    });

    it('orders the stop of a conflicting unit before the start, whatever After=/Before= say', () => {
      const tx = buildTransaction(
        units(unit('a.service', { conflicts: ['b.service'], before: ['b.service'] }), unit('b.service')),
        { unit: 'a.service', job: 'start' },
        new Set(['b.service']),
      );
      assert.deepEqual(tx.stopOrder, [['b.service', 'a.service']]);
      assert.deepEqual(ready(tx, new Set(), new Set()), ['b.service']);
    });

    it('fails when a unit must both start and stop (stopping b also stops a, which requires it)', () => {
      const tx = buildTransaction(
        units(unit('a.service', { requires: ['b.service'], conflicts: ['b.service'] }), unit('b.service')),
        { unit: 'a.service', job: 'start' },
        new Set(['b.service']),
      );
      assert.equal(tx.jobs.size, 0);
      assert.match(tx.failures[0].reason, /^Transaction contains conflicting jobs 'stop' and 'start' for a\.service\./);
    });

    it(
      'between two wanted units that conflict, keeps the stop the ' + 'conflict asks for (delete_one_unmergeable_job)',
      () => {
        const tx = buildTransaction(
          units(
            unit('t.target', { wants: ['x.service', 'y.service'] }),
            unit('x.service', { conflicts: ['y.service'] }),
            unit('y.service'),
          ),
          { unit: 't.target', job: 'start' },
          new Set(['y.service']),
        );
        assert.deepEqual(jobs(tx), { 't.target': 'start', 'x.service': 'start', 'y.service': 'stop' });
      },
    );

    it('drops a start only a wanted unit asked for when the anchor needs the unit stopped', () => {
      const tx = buildTransaction(
        units(
          unit('a.service', { conflicts: ['y.service'], wants: ['w.service'] }),
          unit('w.service', { wants: ['y.service'] }),
          unit('y.service'),
        ),
        { unit: 'a.service', job: 'start' },
        new Set(['y.service']),
      );
      assert.deepEqual(jobs(tx), { 'a.service': 'start', 'y.service': 'stop', 'w.service': 'start' });
    });
  });

  describe('stop and restart propagation', () => {
    const map = units(
      unit('x.service'),
      unit('bound.service', { bindsTo: ['x.service'] }),
      unit('part.service', { partOf: ['x.service'] }),
      unit('req.service', { requires: ['bound.service'] }),
      unit('wanter.service', { wants: ['x.service'] }),
      unit('idle.service', { partOf: ['x.service'] }),
    );
    const active = new Set(['x.service', 'bound.service', 'part.service', 'req.service', 'wanter.service']);

    it(
      'stops units that BindsTo=, PartOf= or (transitively) Requires= ' + 'the stopped unit, not those that want it',
      () => {
        const tx = buildTransaction(map, { unit: 'x.service', job: 'stop' }, active);
        assert.deepEqual(jobs(tx), {
          'x.service': 'stop',
          'bound.service': 'stop',
          'req.service': 'stop',
          'part.service': 'stop',
        });
      },
    );

    it('restarts the active ones on restart (try-restart) and leaves inactive ones alone', () => {
      const tx = buildTransaction(map, { unit: 'x.service', job: 'restart' }, active);
      assert.deepEqual(jobs(tx), {
        'x.service': 'restart',
        'bound.service': 'restart',
        'req.service': 'restart',
        'part.service': 'restart',
      });
    });

    it('runs stops in reverse start order', () => {
      const tx = buildTransaction(
        units(unit('db.service'), unit('app.service', { requires: ['db.service'], after: ['db.service'] })),
        { unit: 'db.service', job: 'stop' },
        new Set(['db.service', 'app.service']),
      );
      assert.deepEqual(tx.stopOrder, [['app.service', 'db.service']]);
      assert.deepEqual(ready(tx, new Set(), new Set()), ['app.service']);
      assert.deepEqual(ready(tx, new Set(['app.service']), new Set()), ['db.service']);
    });
  });

  describe('readiness and failure', () => {
    const map = units(
      unit('t.target', {
        wants: ['a.service', 'b.service', 'w.service'],
        after: ['a.service', 'b.service', 'w.service'],
      }),
      unit('a.service'),
      unit('b.service', { requires: ['a.service'], after: ['a.service'] }),
      unit('c.service'),
      unit('w.service', { wants: ['a.service'], after: ['a.service'] }),
      unit('d.service', { requires: ['b.service'], after: ['b.service'] }),
    );

    it('runs two independent services at once', () => {
      const tx = buildTransaction(
        units(
          unit('t.target', { wants: ['a.service', 'c.service'], after: ['a.service', 'c.service'] }),
          unit('a.service'),
          unit('c.service'),
        ),
        { unit: 't.target', job: 'start' },
      );
      assert.deepEqual(ready(tx, new Set(), new Set()).sort(), ['a.service', 'c.service']);
      assert.deepEqual(ready(tx, new Set(['a.service']), new Set(), new Set(['c.service'])), []);
      assert.deepEqual(ready(tx, new Set(['a.service']), new Set(['c.service'])), ['t.target']);
    });

    it('waits for ordering predecessors, finished either way', () => {
      const tx = buildTransaction(map, { unit: 't.target', job: 'start' });
      assert.deepEqual(ready(tx, new Set(), new Set()), ['a.service']);
      assert.deepEqual(ready(tx, new Set(), new Set(['a.service'])).sort(), ['b.service', 'w.service']);
    });

    it('fails the Requires= dependents of a failed unit, transitively, but not its Wants= dependents', () => {
      const tx = buildTransaction(
        new Map(map).set('t.target', unit('t.target', { wants: ['b.service', 'w.service', 'd.service'] })),
        { unit: 't.target', job: 'start' },
      );
      assert.deepEqual(tx.requiredBy.get('a.service'), ['b.service']);
      assert.deepEqual(dependentsToFail(tx, 'a.service'), ['b.service', 'd.service']);
      assert.deepEqual(dependentsToFail(tx, 'w.service'), []);
    });
  });

  describe('a boot', () => {
    it(
      'starts sysinit, then basic, then enabled services in parallel, ' +
        'then multi-user.target (default dependencies)',
      () => {
        const boot = withDefaultDependencies(
          units(
            unit('sysinit.target', {}, { defaultDependencies: false }),
            unit(
              'basic.target',
              { requires: ['sysinit.target'], after: ['sysinit.target'] },
              { defaultDependencies: false },
            ),
            unit('multi-user.target', {
              requires: ['basic.target'],
              after: ['basic.target'],
              wantedByLinks: ['foo.service', 'bar.service'],
            }),
            unit('foo.service'),
            unit('bar.service'),
            unit('shutdown.target', {}, { defaultDependencies: false }),
          ),
        );
        const tx = buildTransaction(boot, { unit: 'multi-user.target', job: 'start' });
        const layers: string[][] = [];
        const done = new Set<string>();
        for (let r = ready(tx, done, new Set()); r.length; r = ready(tx, done, new Set())) {
          layers.push(r.sort());
          r.forEach((u) => done.add(u));
        }
        assert.deepEqual(layers, [
          ['sysinit.target'],
          ['basic.target'],
          ['bar.service', 'foo.service'],
          ['multi-user.target'],
        ]);
      },
    );

    it('resolves aliases to the unit they name', () => {
      const a = unit('real.service');
      const tx = buildTransaction(
        new Map([
          ['real.service', a],
          ['alias.service', a],
          ['t.target', unit('t.target', { wants: ['alias.service'] })],
        ]),
        { unit: 't.target', job: 'start' },
      );
      assert.deepEqual(jobs(tx), { 't.target': 'start', 'real.service': 'start' });
    });
  });

  describe('ordering cycles', () => {
    it('breaks a cycle through a unit pulled in by Wants= by deleting its job and those only it pulled in', () => {
      const tx = buildTransaction(
        units(
          unit('t.target', { requires: ['b.service'], wants: ['a.service'] }),
          unit('a.service', { after: ['b.service'], requires: ['helper.service'] }),
          unit('helper.service'),
          unit('b.service', { after: ['a.service'] }),
        ),
        { unit: 't.target', job: 'start' },
      );
      assert.deepEqual(jobs(tx), { 't.target': 'start', 'b.service': 'start' });
      assert.equal(tx.brokenCycles.length, 1);
      assert.equal(tx.brokenCycles[0].deleted, 'a.service');
      assert.deepEqual([...tx.brokenCycles[0].cycle].sort(), ['a.service', 'b.service']);
      assert.deepEqual(tx.failures, []);
    });

    it('fails when every job in the cycle is required, listing the cycle', () => {
      const tx = buildTransaction(
        units(
          unit('t.target', { requires: ['a.service'] }),
          unit('a.service', { requires: ['b.service'], after: ['c.service'] }),
          unit('b.service', { requires: ['c.service'], after: ['a.service'] }),
          unit('c.service', { after: ['b.service'] }),
        ),
        { unit: 't.target', job: 'start' },
      );
      assert.equal(tx.jobs.size, 0);
      assert.equal(tx.failures.length, 1);
      assert.match(tx.failures[0].reason, /^Transaction order is cyclic: /);
      assert.deepEqual([...tx.failures[0].cycle!].sort(), ['a.service', 'b.service', 'c.service']);
    });

    it('leaves a DAG: every job becomes ready in turn', () => {
      const tx = buildTransaction(
        units(
          unit('t.target', { wants: ['a.service', 'b.service', 'c.service'] }),
          unit('a.service', { after: ['c.service'] }),
          unit('b.service', { after: ['a.service'] }),
          unit('c.service', { after: ['b.service'] }),
        ),
        { unit: 't.target', job: 'start' },
      );
      const done = new Set<string>();
      for (let r = ready(tx, done, new Set()); r.length; r = ready(tx, done, new Set())) r.forEach((u) => done.add(u));
      assert.equal(done.size, tx.jobs.size);
      assert.equal(tx.brokenCycles.length, 1);
    });
  });
});
