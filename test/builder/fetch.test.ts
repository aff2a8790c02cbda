// parseStanza: the fields fetchDeb reads from `apt-cache show NAME=VERSION`.
import assert from 'node:assert/strict';
import { parseStanza } from '../../builder/fetch.js';

// Two stanzas as apt-cache show prints them when two versions are on offer (no Translation-en,
// so the long description is inline).
const SHOW =
  `Package: e2fsprogs
Version: 1.47.0-2+b2
Essential: yes
Installed-Size: 1530
Maintainer: Theodore Y. Ts'o <tytso@mit.edu>
Architecture: amd64
Replaces: hurd (<= 20040301-1), libblkid1 (<< 1.38+1.39-WIP-2005.12.10-2), libuuid1 (<< 1.38+1.39-WIP-2005.12.10-2)
Depends: logsave
Pre-Depends: libblkid1 (>= 2.36), libc6 (>= 2.34), libcom-err2 (>= 1.43.9), ` +
  `libext2fs2 (= 1.47.0-2+b2), libss2 (>= 1.38), libuuid1 (>= 2.16)
Recommends: e2fsprogs-l10n
Suggests: gpart, parted, fuse2fs, e2fsck-static
Description: ext2/ext3/ext4 file system utilities
 The ext2, ext3 and ext4 file systems are successors of the original ext
 ("extended") file system. They are the main file system types used for
 hard disks on Debian and other Linux systems.
 .
 This package contains programs for creating, checking, and maintaining
 ext2/3/4-based file systems.
Homepage: http://e2fsprogs.sourceforge.net
Tag: admin::filesystem, implemented-in::c, interface::commandline,
 role::program, scope::utility, works-with::file
Section: admin
Priority: required
Filename: pool/main/e/e2fsprogs/e2fsprogs_1.47.0-2+b2_amd64.deb
Size: 571928
MD5sum: 3f3b4b6bc6d2a1f5b7f0a3b4b4a1c9d2
SHA256: 8b0c3ec1f6e3b0b2d0d4bd5e4cbb4f4a6b3ff0d2c1e0a9f8e7d6c5b4a3928170

Package: e2fsprogs
Version: 1.47.0-2
Essential: yes
Architecture: amd64
Description: ext2/ext3/ext4 file system utilities (older)
 Second stanza.
Filename: pool/main/e/e2fsprogs/e2fsprogs_1.47.0-2_amd64.deb
SHA256: 0000000000000000000000000000000000000000000000000000000000000000

`;

describe('builder/fetch parseStanza', () => {
  const f = parseStanza(SHOW);

  it('reads the fields of the first stanza only', () => {
    assert.equal(f.Package, 'e2fsprogs');
    assert.equal(f.Version, '1.47.0-2+b2');
    assert.equal(f.SHA256, '8b0c3ec1f6e3b0b2d0d4bd5e4cbb4f4a6b3ff0d2c1e0a9f8e7d6c5b4a3928170');
    assert.equal(f.Filename, 'pool/main/e/e2fsprogs/e2fsprogs_1.47.0-2+b2_amd64.deb');
    assert.equal(f.Size, '571928');
    assert.ok(!f.Description.includes('Second stanza'));
  });

  it('joins a multi-line Description, continuation lines trimmed', () => {
    assert.equal(
      f.Description,
      [
        'ext2/ext3/ext4 file system utilities',
        'The ext2, ext3 and ext4 file systems are successors of the original ext',
        '("extended") file system. They are the main file system types used for',
        'hard disks on Debian and other Linux systems.',
        '.',
        'This package contains programs for creating, checking, and maintaining',
        'ext2/3/4-based file systems.',
      ].join('\n'),
    );
    assert.equal(
      f.Tag,
      'admin::filesystem, implemented-in::c, interface::commandline,\nrole::program, scope::utility, works-with::file',
    );
  });

  it('keeps colons inside values', () => {
    assert.equal(f.Homepage, 'http://e2fsprogs.sourceforge.net');
    assert.equal(f.Maintainer, "Theodore Y. Ts'o <tytso@mit.edu>");
    assert.match(f['Pre-Depends'], /^libblkid1 \(>= 2\.36\), .* libuuid1 \(>= 2\.16\)$/);
  });

  it('reads an epoch version as it is', () => {
    assert.equal(
      parseStanza('Package: busybox-static\nVersion: 1:1.35.0-4+deb12u1+b1\n').Version,
      '1:1.35.0-4+deb12u1+b1',
    );
  });

  it('skips blank lines before the first stanza', () => {
    const g = parseStanza('\n\nPackage: x\nSHA256: ab\n\nPackage: y\n');
    assert.deepEqual(g, { Package: 'x', SHA256: 'ab' });
  });

  it('gives no fields for empty output (the version is not in the archive)', () => {
    assert.deepEqual(parseStanza(''), {});
    assert.equal(parseStanza('N: Unable to locate package nope\n').SHA256, undefined);
  });
});
