/*
 * keel-verity: opens a USR slot through dm-verity from the initramfs, without dmsetup or
 * veritysetup (and their shared libraries). Built static by `keel build`.
 *
 *   keel-verity open DEVICE ROOTHASH NAME   prints /dev/dm-N on success
 *
 * The slot holds a squashfs, zero padding to 4096 bytes, then the hash area that
 * builder/verity.ts (or `veritysetup format --hash-offset`) writes: a verity superblock block,
 * then the tree. The hash offset is the squashfs size rounded up; the salt and the number of
 * data blocks come from the superblock. None of that needs to be trusted: every hash in the
 * tree is salted and the tree's shape follows from the block count, so any change to them
 * changes the root hash, which comes from the kernel command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define BLOCK 4096

static int fail(const char *what, const char *detail) {
	fprintf(stderr, "keel-verity: cannot %s: %s\n", what, detail);
	return 1;
}

static uint64_t le64(const unsigned char *p) {
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
	return v;
}
static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const unsigned char *p) { return p[0] | p[1] << 8; }

static int read_at(int fd, void *buf, size_t n, off_t off) {
	ssize_t r = pread(fd, buf, n, off);
	return r == (ssize_t)n ? 0 : -1;
}

/* One dm ioctl with a buffer large enough for a table. */
static int dm_call(int ctl, unsigned long req, struct dm_ioctl *io, size_t size) {
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = size;
	return ioctl(ctl, req, io);
}

static int verity_open(const char *dev, const char *root, const char *name) {
	char msg[512];
	if (strlen(root) != 64 || strspn(root, "0123456789abcdef") != 64) return fail("open USR", "the root hash is not 64 lowercase hex digits");
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return fail("open USR", strerror(errno));
	unsigned char sq[96], sb[512];
	if (read_at(fd, sq, sizeof sq, 0) || memcmp(sq, "hsqs", 4)) return fail("open USR", "no squashfs superblock at the start of the slot");
	uint64_t used = le64(sq + 40);
	uint64_t hash_offset = (used + BLOCK - 1) / BLOCK * BLOCK;
	if (read_at(fd, sb, sizeof sb, hash_offset) || memcmp(sb, "verity\0\0", 8)) return fail("open USR", "no verity superblock after the squashfs");
	uint32_t version = le32(sb + 8), hash_type = le32(sb + 12);
	uint32_t dbs = le32(sb + 64), hbs = le32(sb + 68);
	uint64_t blocks = le64(sb + 72);
	uint16_t salt_size = le16(sb + 80);
	if (version != 1 || hash_type != 1 || strncmp((char *)sb + 32, "sha256", 32) || dbs != BLOCK || hbs != BLOCK || salt_size > 256)
		return fail("open USR", "unsupported verity superblock (want version 1, sha256, 4096-byte blocks)");
	if (blocks * BLOCK != hash_offset) return fail("open USR", "the verity superblock's data size does not match the squashfs");
	struct stat st;
	if (fstat(fd, &st) || !S_ISBLK(st.st_mode)) return fail("open USR", "not a block device");
	close(fd);

	char salt[513];
	for (int i = 0; i < salt_size; i++) sprintf(salt + 2 * i, "%02x", sb[88 + i]);
	salt[2 * salt_size] = 0;
	if (!salt_size) strcpy(salt, "-");

	int ctl = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) return fail("open /dev/mapper/control", strerror(errno));
	size_t size = 16384;
	struct dm_ioctl *io = calloc(1, size);
	if (!io) return fail("open USR", "out of memory");
	snprintf(io->name, sizeof io->name, "%s", name);
	io->flags = DM_READONLY_FLAG;
	if (dm_call(ctl, DM_DEV_CREATE, io, sizeof *io)) return fail("create the dm device", strerror(errno));

	memset(io, 0, size);
	snprintf(io->name, sizeof io->name, "%s", name);
	io->flags = DM_READONLY_FLAG;
	io->target_count = 1;
	io->data_start = sizeof *io;
	struct dm_target_spec *t = (struct dm_target_spec *)((char *)io + io->data_start);
	t->sector_start = 0;
	t->length = blocks * (BLOCK / 512);
	snprintf(t->target_type, sizeof t->target_type, "verity");
	char *params = (char *)(t + 1);
	int n = snprintf(params, size - io->data_start - sizeof *t, "1 %u:%u %u:%u %u %u %llu %llu sha256 %s %s",
		major(st.st_rdev), minor(st.st_rdev), major(st.st_rdev), minor(st.st_rdev), BLOCK, BLOCK,
		(unsigned long long)blocks, (unsigned long long)(hash_offset / BLOCK + 1), root, salt);
	size_t spec = sizeof *t + n + 1;
	spec = (spec + 7) & ~(size_t)7;
	t->next = 0;
	if (dm_call(ctl, DM_TABLE_LOAD, io, io->data_start + spec)) {
		snprintf(msg, sizeof msg, "%s (is dm-verity loaded?)", strerror(errno));
		return fail("load the verity table", msg);
	}

	memset(io, 0, size);
	snprintf(io->name, sizeof io->name, "%s", name);
	if (dm_call(ctl, DM_DEV_SUSPEND, io, sizeof *io)) return fail("activate the dm device", strerror(errno));
	printf("/dev/dm-%u\n", minor(io->dev));
	return 0;
}

int main(int argc, char **argv) {
	if (argc == 5 && !strcmp(argv[1], "open")) return verity_open(argv[2], argv[3], argv[4]);
	fprintf(stderr, "usage: keel-verity open DEVICE ROOTHASH NAME\n");
	return 2;
}
