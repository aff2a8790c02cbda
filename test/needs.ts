// Tests that need root: they fail (never skip) without it, since CI runs as root; the unit tier leaves them out.

/** True in `make test-unit` (KEEL_TEST_TIER=unit): only tests that need no root, no image and no QEMU. */
export const UNIT_TIER = process.env.KEEL_TEST_TIER === 'unit';

/** Throws "needs root (CI runs as root)" naming `what` when this process is not root. */
export function needsRoot(what = 'this test'): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (CI runs as root)`);
}

/** A describe whose tests need root: it fails in its first hook without it; the unit tier does not define it. */
export function describeAsRoot(title: string, fn: (this: Mocha.Suite) => void): void {
  if (UNIT_TIER) return;
  describe(title, function () {
    before(() => needsRoot(`"${title}"`));
    fn.call(this);
  });
}

/** An it that needs root: it fails without it; the unit tier does not define it. */
export function itAsRoot(title: string, fn: (this: Mocha.Context) => void | Promise<unknown>): void {
  if (UNIT_TIER) return;
  it(title, function () {
    needsRoot(`"${title}"`);
    return fn.call(this);
  });
}
