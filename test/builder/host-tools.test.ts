// Host tools: finding them (and naming the Debian package when one is missing) and running them.
import assert from 'node:assert/strict';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildError } from '../../builder/errors.js';
import { HOST_FILES, requireHostFile, run, TOOL_PACKAGES, which } from '../../builder/host-tools.js';

const SBIN_AND_BIN = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const installed = (tool: string) =>
  SBIN_AND_BIN.some((d) => {
    try {
      accessSync(join(d, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

/** Asserts `fn` throws a BuildError with `code` and returns it. */
function buildError(fn: () => unknown, code: string): BuildError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof BuildError, String(e));
    assert.equal(e.code, code);
    return e;
  }
  assert.fail('no error thrown');
}

describe('builder/host-tools', () => {
  let dir: string;
  let savedPath: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keel-hosttools-'));
    savedPath = process.env.PATH;
  });
  afterEach(() => {
    if (savedPath === undefined) delete process.env.PATH;
    else process.env.PATH = savedPath;
    rmSync(dir, { recursive: true, force: true });
  });

  describe('which', () => {
    it('finds a tool on PATH first', () => {
      const tool = join(dir, 'keel-fake-tool');
      writeFileSync(tool, '#!/bin/sh\n');
      chmodSync(tool, 0o755);
      process.env.PATH = dir;
      assert.equal(which('keel-fake-tool'), tool);
    });

    it('skips a file on PATH that is not executable', () => {
      writeFileSync(join(dir, 'sh'), 'not a program');
      chmodSync(join(dir, 'sh'), 0o644);
      process.env.PATH = dir;
      assert.notEqual(which('sh'), join(dir, 'sh'));
      assert.match(which('sh'), /^\/(usr\/)?(local\/)?s?bin\/sh$/);
    });

    it('also looks in the sbin directories when PATH lacks them', () => {
      process.env.PATH = dir;
      assert.match(which('sh'), /^\/(usr\/)?(local\/)?s?bin\/sh$/);
    });

    it('returns a path with a slash as given', () => {
      assert.equal(which('./tools/mine'), './tools/mine');
      assert.equal(which('/nonexistent/bin/x'), '/nonexistent/bin/x');
    });

    it('names the Debian package of a missing tool', () => {
      const tool = 'keel-test-absent-tool';
      TOOL_PACKAGES[tool] = 'keel-test-pkg';
      try {
        process.env.PATH = dir;
        const e = buildError(() => which(tool), 'ENOTOOL');
        assert.equal(
          e.message,
          'cannot find host tool keel-test-absent-tool: install the Debian package ' +
            'keel-test-pkg (apt-get install keel-test-pkg, or make deps)',
        );
      } finally {
        delete TOOL_PACKAGES[tool];
      }
    });

    it('names the package of each mapped tool this machine lacks', () => {
      process.env.PATH = dir;
      for (const [tool, pkg] of Object.entries(TOOL_PACKAGES)) {
        if (installed(tool)) continue;
        const e = buildError(() => which(tool), 'ENOTOOL');
        assert.ok(e.message.includes(`install the Debian package ${pkg} (apt-get install ${pkg}`), e.message);
      }
    });

    it('says (unknown) for a tool with no known package', () => {
      process.env.PATH = dir;
      const e = buildError(() => which('keel-no-such-tool'), 'ENOTOOL');
      assert.equal(e.message, 'cannot find host tool keel-no-such-tool: install the Debian package (unknown)');
    });

    it('maps the tools the builder needs to their Debian packages', () => {
      assert.equal(TOOL_PACKAGES['mksquashfs'], 'squashfs-tools');
      assert.equal(TOOL_PACKAGES['mkfs.ext4'], 'e2fsprogs');
      assert.equal(TOOL_PACKAGES['mkfs.vfat'], 'dosfstools');
      assert.equal(TOOL_PACKAGES['grub-mkimage'], 'grub-common');
      for (const pkg of Object.values(TOOL_PACKAGES)) assert.match(pkg, /^[a-z0-9][a-z0-9+.-]+$/);
    });
  });

  describe('requireHostFile', () => {
    it('returns a readable file and names the package of a missing one', () => {
      const f = join(dir, 'present');
      writeFileSync(f, '');
      assert.equal(requireHostFile(f), f);
      const missing = join(dir, 'absent.fd');
      HOST_FILES[missing] = 'ovmf-test';
      try {
        assert.equal(
          buildError(() => requireHostFile(missing), 'ENOTOOL').message,
          `cannot find ${missing}: install the Debian package ovmf-test`,
        );
      } finally {
        delete HOST_FILES[missing];
      }
      assert.match(buildError(() => requireHostFile(join(dir, 'other')), 'ENOTOOL').message, /\(unknown\)$/);
    });
  });

  describe('run', () => {
    it('returns stdout without the final newline', async () => {
      assert.equal(await run('sh', ['-c', 'echo one; echo two']), 'one\ntwo');
    });

    it('turns a failure into ETOOL with the exit code and the last 8 lines of stderr', async () => {
      const script = 'echo to-stdout; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo err$i >&2; done; exit 3';
      await assert.rejects(run('sh', ['-c', script]), (e: any) => {
        assert.ok(e instanceof BuildError);
        assert.equal(e.code, 'ETOOL');
        const [head, ...tail] = e.message.split('\n');
        assert.equal(head, `cannot run sh -c ${script}: exit 3`);
        assert.deepEqual(tail, ['err5', 'err6', 'err7', 'err8', 'err9', 'err10', 'err11', 'err12']);
        return true;
      });
    });

    it('reports a tool killed by a signal', async () => {
      await assert.rejects(
        run('sh', ['-c', 'kill -9 $$']),
        (e: any) => e instanceof BuildError && e.code === 'ETOOL' && /SIGKILL/.test(e.message),
      );
    });

    it('rejects with ENOTOOL when the tool is missing', async () => {
      process.env.PATH = dir;
      await assert.rejects(run('keel-no-such-tool', []), (e: any) => e instanceof BuildError && e.code === 'ENOTOOL');
    });

    it('passes options through to execa', async () => {
      assert.equal(await run('sh', ['-c', 'pwd'], { cwd: dir }), dir);
    });
  });
});
