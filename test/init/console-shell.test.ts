// The console the shell runs on, and the hostname rule of system setup.
import assert from 'node:assert/strict';
import { consoleDevice } from '../../init/console-shell.js';
import { hostnameFrom } from '../../init/system-setup.js';

describe('init/console-shell consoleDevice', () => {
  it('uses the terminal of console=, without the line settings', () => {
    assert.equal(consoleDevice('console=ttyS0,115200'), '/dev/ttyS0');
    assert.equal(consoleDevice('console=ttyS0,115200n8 panic=10 quiet'), '/dev/ttyS0');
    assert.equal(consoleDevice('console=hvc0'), '/dev/hvc0');
  });

  it('takes the last console= (the one the kernel makes /dev/console)', () => {
    assert.equal(consoleDevice('console=tty0 console=ttyS0,115200'), '/dev/ttyS0');
    assert.equal(consoleDevice('console=ttyS0,115200 quiet console=tty1'), '/dev/tty1');
  });

  it('reads /proc/cmdline as it is, trailing newline and all', () => {
    assert.equal(consoleDevice('BOOT_IMAGE=/boot/vmlinuz keel.usr=USR-A console=ttyS1,9600\n'), '/dev/ttyS1');
  });

  it('falls back to /dev/console without console=', () => {
    assert.equal(consoleDevice('panic=10 quiet'), '/dev/console');
    assert.equal(consoleDevice(''), '/dev/console');
    assert.equal(consoleDevice('keel.console=ttyS0 netconsole=6665@10.0.0.1/eth0'), '/dev/console');
  });
});

describe('init/system-setup hostnameFrom', () => {
  it('takes the first line that is not a comment, trimmed', () => {
    assert.equal(hostnameFrom('web-1\n'), 'web-1');
    assert.equal(hostnameFrom('# set by cloud-config\n\n   db.example.com  \nignored\n'), 'db.example.com');
  });

  it('falls back to keel for an empty file or only comments', () => {
    assert.equal(hostnameFrom(''), 'keel');
    assert.equal(hostnameFrom('\n\n'), 'keel');
    assert.equal(hostnameFrom('# nothing here\n'), 'keel');
  });

  it('falls back to keel for invalid names', () => {
    for (const bad of [
      'under_score',
      '-leading',
      'dot..dot',
      '.lead',
      'trailing.',
      'ünï',
      'a'.repeat(64),
      `${'a'.repeat(40)}.${'b'.repeat(30)}`,
    ]) {
      assert.equal(hostnameFrom(`${bad}\n`), 'keel', JSON.stringify(bad));
    }
  });

  it('reads only the first word of the line, as busybox hostname -F does', () => {
    assert.equal(hostnameFrom('has space\n'), 'has');
  });

  it('accepts names up to 63 characters a label and 64 in all', () => {
    assert.equal(hostnameFrom('a'.repeat(63)), 'a'.repeat(63));
    const name = `${'a'.repeat(31)}.${'b'.repeat(32)}`;
    assert.equal(name.length, 64);
    assert.equal(hostnameFrom(name), name);
    assert.equal(hostnameFrom('1host'), '1host');
  });

  // Bug: the doc comment promises "first word of /etc/hostname" (busybox `hostname -F` reads the
  // first word too), but a trailing comment or second word makes the whole line invalid -> "keel".
  it('takes the first word of a line with a trailing comment', () => {
    assert.equal(hostnameFrom('web-1 # the web box\n'), 'web-1');
  });
});
