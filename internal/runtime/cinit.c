// cinit: the container init in C, for the common case.
//
// Starting the Go runtime in the init costs more than everything the init
// does (page faults of a fresh runtime, its threads, decoding the spec with
// reflection): on this class of machine ~7 ms of a ~45 ms `run`. So when
// the spec needs nothing only the Go init can do (see planFor in plan.go),
// the parent sends a PLAN with the bootstrap: the spec already turned into
// a list of operations, in the Go init's order, with every decision taken
// (flags parsed, devices merged, cgroup mounts expanded, capability sets as
// masks, seccomp compiled to BPF). The process that would have returned
// into Go runs the plan here and execve()s the container process; the Go
// runtime never starts in it.
//
// The plan only says *what*; *how* is the same as in the Go init and
// keeps its safety properties: every mount target is resolved with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) from an fd of the rootfs
// and created component by component below resolved fds, mounts go onto
// fds (/proc/self/fd/N of the host procfs before pivot_root, the new mount
// API after it), masked and read-only paths and /proc writes refuse
// symlinks, /dev/null must be 1:3, every fd is CLOEXEC and close_range
// marks the rest before the chdir, the cwd must be inside the root,
// inheritable capabilities are exactly the spec's.
//
// Plan wire format (inside the R_PLAN bootstrap record):
//   op    := u32 code | u32 length | field*
//   field := u32 length | bytes | NUL      (numbers: 8 bytes little endian)
// The codes and the fields of each op are listed with op_* below and in
// plan.go; the Go side is the only writer.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>
#ifndef CLOSE_RANGE_CLOEXEC /* musl's unistd.h lacks it */
#include <linux/close_range.h>
#endif

#include "nsexec.h"

// new mount API constants (linux/mount.h clashes with sys/mount.h here)
#define C_OPEN_TREE_CLONE 1
#define C_OPEN_TREE_CLOEXEC O_CLOEXEC
#define C_AT_RECURSIVE 0x8000
#define C_MOVE_MOUNT_F_EMPTY_PATH 0x04
#define C_MOVE_MOUNT_T_EMPTY_PATH 0x40
#define C_FSOPEN_CLOEXEC 1
#define C_FSCONFIG_SET_STRING 1
#define C_FSCONFIG_CMD_CREATE 6
#define C_FSMOUNT_CLOEXEC 1
#define C_MOUNT_ATTR_RDONLY 0x1
#define C_MOUNT_ATTR_NOSUID 0x2
#define C_MOUNT_ATTR_NODEV 0x4
#define C_MOUNT_ATTR_NOEXEC 0x8
#define C_PROC_SUPER_MAGIC 0x9fa0
#define C_SYSFS_MAGIC 0x62656572

struct c_mount_attr {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

enum {
	OP_ROOT_PREP = 1, // prop, rootfs, shared, mountpoint to make private
	OP_MOUNT = 2,     // src, dest, fstype, flags, data, bind, remount flags, fallback, prop...
	OP_REMOUNT = 3,   // dest, flags, data
	OP_DEVICE = 4,    // dir, base, mode, dev, uid, gid, path (for messages)
	OP_DEVLINKS = 5,  //
	OP_HOOKS = 6,     // (HOOKS / HOOKS_DONE round trip with the parent)
	OP_PIVOT = 7,     // nopivot, rootfs
	OP_MKCWD = 8,     // cwd
	OP_SETPROP = 9,   // prop
	OP_MASK = 10,     // path
	OP_SYSCTL = 11,   // path, value, key
	OP_ROPATH = 12,   // path
	OP_ROOT_RO = 13,  //
	OP_HOSTNAME = 14, // name
	OP_DOMAIN = 15,   // name
	OP_KEYRING = 16,  // name
	OP_RLIMIT = 17,   // resource, soft, hard, name
	OP_SECCOMP = 18,  // flags, filter (struct sock_filter[])
	OP_PROCESS = 19,  // see do_process
};

enum { FB_NONE, FB_SYSFS, FB_MQUEUE, FB_CGROUP2 };

enum { MSG_HOOKS = 11, MSG_HOOKS_DONE = 12, MSG_READY = 15 };

#define RIN (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

static int rootfd = -1;
static int devnull = -1;
static int ready_sent;
static struct sock_filter *sc_filter;
static unsigned short sc_len;
static unsigned int sc_flags;

// Go's error strings are strerror's, lower-cased (callers and tests match
// on them).
static const char *errstr(int e)
{
	static char buf[128];
	snprintf(buf, sizeof(buf), "%s", strerror(e));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z'))
		buf[0] += 'a' - 'A';
	return buf;
}

// fail reports msg to the parent (ERROR) or, once the parent is gone (after
// READY), on the container's stderr, and exits. With errno_ != 0 the error
// text is appended.
__attribute__((noreturn, format(printf, 2, 3))) static void fail(int errno_, const char *fmt, ...)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "container init: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 128, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 128)
		n = sizeof(buf) - 128;
	if (errno_)
		n += snprintf(buf + n, 128, ": %s", errstr(errno_));
	if (ready_sent || nsexec_send(MSG_ERROR, buf, n) < 0) {
		char out[1100];
		int m = snprintf(out, sizeof(out), "berth-runtime: %.*s\n", n, buf);
		if (write(2, out, m) < 0) {
		}
	}
	_exit(1);
}

// ---- plan decoding

struct rd {
	const char *p;
	uint32_t n;
};

static const char *field(struct rd *r, uint32_t *len)
{
	uint32_t l;
	if (r->n < 4)
		fail(0, "plan: truncated");
	memcpy(&l, r->p, 4);
	if ((uint64_t)l + 5 > r->n)
		fail(0, "plan: truncated field");
	const char *v = r->p + 4;
	r->p += l + 5;
	r->n -= l + 5;
	if (len)
		*len = l;
	return v;
}

static const char *str(struct rd *r) { return field(r, NULL); }

static uint64_t num(struct rd *r)
{
	uint32_t l;
	const char *v = field(r, &l);
	uint64_t x;
	if (l != 8)
		fail(0, "plan: bad number");
	memcpy(&x, v, 8);
	return x;
}

// ---- paths inside the root

static char fdbuf[2][40];
static const char *fdpath(int slot, int fd)
{
	snprintf(fdbuf[slot], sizeof(fdbuf[slot]), "/proc/self/fd/%d", fd);
	return fdbuf[slot];
}

static int openat2_(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
	struct open_how how = {.flags = flags | O_CLOEXEC, .resolve = resolve};
	int fd;
	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd;
}

// clean_abs writes the lexically cleaned absolute form of in to out
// (filepath.Clean("/" + in)).
static void clean_abs(char *out, size_t cap, const char *in)
{
	size_t n = 0;
	out[n++] = '/';
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		size_t l = e - p;
		if (l == 1 && p[0] == '.') {
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			while (n > 1 && out[n - 1] != '/')
				n--;
			if (n > 1)
				n--;
		} else if (n + l + 2 < cap) {
			if (n > 1)
				out[n++] = '/';
			memcpy(out + n, p, l);
			n += l;
		}
		p = e;
	}
	out[n] = 0;
}

// mkdir_in_root is mkdirInRoot of mount.go: make sure path exists in the
// root (a directory, or an empty file) and return an O_PATH fd of it, each
// component created below an fd resolved in the root. -1 with errno.
static int mkdir_in_root(const char *path, int file, int depth)
{
	int fd = openat2_(rootfd, path, O_PATH, RIN);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (depth > 40) {
		errno = ELOOP;
		return -1;
	}
	char clean[4096];
	clean_abs(clean, sizeof(clean), path);
	if (strcmp(clean, "/") == 0) {
		errno = ENOENT;
		return -1;
	}
	char parent[4096];
	char *slash = strrchr(clean, '/');
	size_t pl = slash - clean + 1;
	memcpy(parent, clean, pl);
	parent[pl] = 0;
	const char *base = slash + 1;
	int pfd = mkdir_in_root(parent, 0, depth + 1);
	if (pfd < 0)
		return -1;
	int dfd = openat2_(pfd, ".", O_DIRECTORY | O_RDONLY, RESOLVE_BENEATH);
	int saved = errno;
	close(pfd);
	if (dfd < 0) {
		errno = saved;
		return -1;
	}
	if (file) {
		int nfd = openat(dfd, base, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (nfd >= 0)
			close(nfd);
		else if (errno != EEXIST)
			goto fail;
	} else if (mkdirat(dfd, base, 0755) < 0 && errno != EEXIST) {
		goto fail;
	}
	fd = openat2_(rootfd, clean, O_PATH, RIN);
	if (fd < 0 && errno == ENOENT) {
		// a dangling symlink: create its target, read as a path inside
		// the root
		char target[4096], full[8192];
		ssize_t n = readlinkat(dfd, base, target, sizeof(target) - 1);
		if (n < 0) {
			errno = ENOENT;
			goto fail;
		}
		target[n] = 0;
		if (target[0] == '/')
			snprintf(full, sizeof(full), "%s", target);
		else
			snprintf(full, sizeof(full), "%s%s", parent, target);
		close(dfd);
		return mkdir_in_root(full, file, depth + 1);
	}
	saved = errno;
	close(dfd);
	errno = saved;
	return fd;
fail:
	saved = errno;
	close(dfd);
	errno = saved;
	return -1;
}

static int reopen(const char *dest)
{
	int fd = openat2_(rootfd, dest, O_PATH, RIN);
	if (fd < 0)
		fail(errno, "reopen %s", dest);
	return fd;
}

// remount_bind is remountBind: flags locked by the source mount are kept.
static int remount_bind(const char *path, unsigned long flags)
{
	if (mount("", path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	struct statfs st;
	if (statfs(path, &st) < 0) {
		errno = EPERM;
		return -1;
	}
	unsigned long locked = st.f_flags & (MS_NODEV | MS_NOSUID | MS_NOEXEC | MS_RDONLY | MS_NOATIME | MS_RELATIME | MS_NODIRATIME);
	return mount("", path, NULL, MS_REMOUNT | MS_BIND | flags | locked, NULL);
}

static int clone_mount_onto(int srcfd, int dstfd, int recursive, uint64_t attr)
{
	unsigned int fl = C_OPEN_TREE_CLONE | C_OPEN_TREE_CLOEXEC | AT_EMPTY_PATH;
	if (recursive)
		fl |= C_AT_RECURSIVE;
	int tree = syscall(SYS_open_tree, srcfd, "", fl);
	if (tree < 0)
		return -1;
	if (attr) {
		struct c_mount_attr a = {.attr_set = attr};
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (recursive ? C_AT_RECURSIVE : 0), &a, sizeof(a)) < 0) {
			int e = errno;
			close(tree);
			errno = e;
			return -1;
		}
	}
	int r = syscall(SYS_move_mount, tree, "", dstfd, "", C_MOVE_MOUNT_F_EMPTY_PATH | C_MOVE_MOUNT_T_EMPTY_PATH);
	int e = errno;
	close(tree);
	errno = e;
	return r;
}

// ---- ops

static void op_root_prep(struct rd *r)
{
	unsigned long prop = num(r);
	const char *rootfs = str(r);
	int shared = num(r);
	const char *pm = str(r);
	if (mount("", "/", NULL, prop, NULL) < 0)
		fail(errno, "set root propagation");
	if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail(errno, "bind rootfs");
	if (shared) {
		if (*pm)
			mount("", pm, NULL, MS_PRIVATE, NULL);
		if (mount("", rootfs, NULL, MS_PRIVATE, NULL) < 0)
			fail(errno, "make rootfs private");
	}
	rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		fail(errno, "open rootfs %s", rootfs);
	struct statfs st;
	if (statfs("/proc/self", &st) < 0 || st.f_type != C_PROC_SUPER_MAGIC)
		fail(0, "host /proc is not procfs");
}

static void op_mount(struct rd *r)
{
	const char *src = str(r), *dest = str(r), *fstype = str(r);
	unsigned long flags = num(r);
	const char *data = str(r);
	int bind = num(r);
	unsigned long rest = num(r);
	int fallback = num(r);
	int file = 0;
	if (bind) {
		struct stat st;
		if (stat(src, &st) < 0)
			fail(errno, "mount source %s: stat %s", src, src);
		file = !S_ISDIR(st.st_mode);
	}
	int target = mkdir_in_root(dest, file, 0);
	if (target < 0)
		fail(errno, "mount destination %s", dest);
	const char *tpath = fdpath(0, target);
	if (bind) {
		if (mount(src, tpath, NULL, MS_BIND | (flags & MS_REC), NULL) < 0)
			fail(errno, "bind mount %s on %s", src, dest);
		if (rest) {
			// reopen: the old fd names the directory under the new mount
			int nt = reopen(dest);
			if (remount_bind(fdpath(1, nt), rest) < 0)
				fail(errno, "remount %s", dest);
			close(nt);
		}
	} else {
		int rc = mount(src, tpath, fstype, flags, data);
		if (rc < 0 && fallback == FB_SYSFS && (errno == EPERM || errno == EBUSY)) {
			// sysfs cannot be mounted in a user namespace that does not own
			// the network namespace: bind the host's, read-only
			rc = mount("/sys", tpath, NULL, MS_BIND | MS_REC, NULL);
			if (rc == 0)
				rc = remount_bind(tpath, flags | MS_RDONLY);
		}
		if (rc < 0 && fallback == FB_MQUEUE && errno == EPERM)
			rc = mount("/dev/mqueue", tpath, NULL, MS_BIND | MS_REC, NULL);
		if (rc < 0 && fallback == FB_CGROUP2 && (errno == EPERM || errno == EBUSY))
			rc = mount("/sys/fs/cgroup", tpath, NULL, MS_BIND | MS_REC, NULL);
		if (rc < 0)
			fail(errno, "mount %s (%s) on %s", src, fstype, dest);
	}
	close(target);
	if (r->n > 0) {
		int nt = reopen(dest);
		while (r->n > 0) {
			if (mount("", fdpath(1, nt), NULL, num(r), NULL) < 0)
				fail(errno, "set propagation of %s", dest);
		}
		close(nt);
	}
}

static void op_remount(struct rd *r)
{
	const char *dest = str(r);
	unsigned long flags = num(r);
	const char *data = str(r);
	int nt = reopen(dest);
	if (mount("", fdpath(0, nt), NULL, MS_REMOUNT | flags, data) < 0)
		fail(errno, "make %s read-only", dest);
	close(nt);
}

static void op_device(struct rd *r)
{
	const char *dir = str(r), *base = str(r);
	mode_t mode = num(r);
	dev_t dev = num(r);
	int64_t uid = num(r), gid = num(r);
	const char *path = str(r);
	int pfd = mkdir_in_root(dir, 0, 0);
	if (pfd < 0)
		fail(errno, "device %s", path);
	int dfd = openat2_(pfd, ".", O_DIRECTORY | O_RDONLY, RESOLVE_BENEATH);
	if (dfd < 0)
		fail(errno, "device %s", path);
	close(pfd);
	// mknod first: /dev is mostly a fresh tmpfs, and a lookup that misses
	// costs here (negative dentries); replace what the rootfs has there
	if (mknodat(dfd, base, mode, dev) < 0) {
		if (errno != EEXIST)
			fail(errno, "device %s", path);
		unlinkat(dfd, base, 0);
		if (mknodat(dfd, base, mode, dev) < 0)
			fail(errno, "device %s", path);
	}
	// mknod honours the umask; set the mode the spec asked for
	if (fchmodat(dfd, base, mode & 07777, 0) < 0)
		fail(errno, "device %s", path);
	if ((uid >= 0 || gid >= 0) && fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		fail(errno, "device %s", path);
	close(dfd);
}

static void op_devlinks(void)
{
	static const char *links[][2] = {
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	};
	int n = 4;
	int fd = openat2_(rootfd, "/dev/pts/ptmx", O_PATH, RIN);
	if (fd >= 0) {
		close(fd);
		n = 5;
	}
	int dev = openat2_(rootfd, "/dev", O_DIRECTORY | O_RDONLY, RIN);
	if (dev < 0)
		fail(errno, "open /dev");
	for (int i = 0; i < n; i++) {
		int rc = symlinkat(links[i][0], dev, links[i][1]);
		if (rc < 0 && errno == EEXIST && i == 4) {
			// ptmx replaces what is there (a device node from the rootfs)
			unlinkat(dev, "ptmx", 0);
			rc = symlinkat(links[i][0], dev, links[i][1]);
		}
		if (rc < 0 && errno != EEXIST)
			fail(errno, "symlink /dev/%s", links[i][1]);
	}
	close(dev);
}

static void op_hooks(void)
{
	if (nsexec_send(MSG_HOOKS, NULL, 0) < 0)
		fail(errno, "hooks");
	uint32_t hdr[2];
	if (nsexec_read(hdr, sizeof(hdr)) < 0)
		fail(0, "waiting for hooks: parent gone");
	if (hdr[0] != MSG_HOOKS_DONE || hdr[1] != 0)
		fail(0, "init socket: got message %u, want %d", hdr[0], MSG_HOOKS_DONE);
}

static void op_pivot(struct rd *r)
{
	int nopivot = num(r);
	const char *rootfs = str(r);
	if (nopivot) {
		if (chdir(rootfs) < 0)
			fail(errno, "chdir %s", rootfs);
		if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
			fail(errno, "move rootfs");
		if (chroot(".") < 0)
			fail(errno, "chroot");
	} else {
		// pivot_root(".", ".") stacks the old root on the new one, which
		// is then detached: no temporary directory
		int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		if (oldroot < 0 || newroot < 0)
			fail(errno, "open roots");
		if (fchdir(newroot) < 0)
			fail(errno, "chdir rootfs");
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			fail(errno, "pivot_root");
		if (fchdir(oldroot) < 0)
			fail(errno, "chdir old root");
		if (mount("", ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			fail(errno, "make old root rslave");
		if (umount2(".", MNT_DETACH) < 0)
			fail(errno, "detach old root");
		close(oldroot);
		close(newroot);
	}
	if (chdir("/") < 0)
		fail(errno, "chdir /");
	close(rootfd);
	rootfd = -1;
}

// op_mkcwd: as runc, a missing cwd is created inside the new root (so a
// symlink in it cannot lead out), before the root turns read-only.
static void op_mkcwd(struct rd *r)
{
	const char *cwd = str(r);
	struct stat st;
	if (stat(cwd, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			fail(ENOTDIR, "create cwd %s: mkdir %s", cwd, cwd);
		return;
	}
	char p[4096];
	snprintf(p, sizeof(p), "%s", cwd);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == 0) {
			char c = *s;
			*s = 0;
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				fail(errno, "create cwd %s: mkdir %s", cwd, p);
			*s = c;
			if (c == 0)
				break;
		}
	}
}

// open_devnull: the container's /dev/null, not following symlinks, and it
// must be the null device (CVE-2025-31133).
static void open_devnull(void)
{
	if (devnull >= 0)
		return;
	devnull = openat2_(AT_FDCWD, "/dev/null", O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
	if (devnull < 0)
		fail(errno, "/dev/null");
	struct stat st;
	if (fstat(devnull, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
		fail(0, "/dev/null is not the null device: refusing to use it to mask paths");
}

static void op_mask(struct rd *r)
{
	const char *path = str(r);
	open_devnull();
	int fd = openat2_(AT_FDCWD, path, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return;
		fail(errno, "mask %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail(errno, "mask %s", path);
	if (S_ISDIR(st.st_mode)) {
		// an empty read-only tmpfs, fd to fd
		int fs = syscall(SYS_fsopen, "tmpfs", C_FSOPEN_CLOEXEC);
		if (fs < 0)
			fail(errno, "mask %s: fsopen tmpfs", path);
		if (syscall(SYS_fsconfig, fs, C_FSCONFIG_SET_STRING, "size", "0", 0) < 0 ||
		    syscall(SYS_fsconfig, fs, C_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
			fail(errno, "mask %s: fsconfig", path);
		int mfd = syscall(SYS_fsmount, fs, C_FSMOUNT_CLOEXEC,
				  C_MOUNT_ATTR_RDONLY | C_MOUNT_ATTR_NOSUID | C_MOUNT_ATTR_NODEV | C_MOUNT_ATTR_NOEXEC);
		if (mfd < 0)
			fail(errno, "mask %s: fsmount", path);
		if (syscall(SYS_move_mount, mfd, "", fd, "", C_MOVE_MOUNT_F_EMPTY_PATH | C_MOVE_MOUNT_T_EMPTY_PATH) < 0)
			fail(errno, "mask %s: move_mount", path);
		close(mfd);
		close(fs);
	} else if (clone_mount_onto(devnull, fd, 0, 0) < 0) {
		fail(errno, "mask %s", path);
	}
	close(fd);
}

// op_sysctl writes to /proc only after checking the file is on procfs
// (CVE-2019-19921).
static void op_sysctl(struct rd *r)
{
	const char *path = str(r), *val = str(r), *key = str(r);
	int fd = openat2_(AT_FDCWD, path, O_WRONLY, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
	if (fd < 0)
		fail(errno, "sysctl %s=%s", key, val);
	struct statfs st;
	if (fstatfs(fd, &st) < 0)
		fail(errno, "sysctl %s=%s", key, val);
	if (st.f_type != C_PROC_SUPER_MAGIC)
		fail(0, "sysctl %s=%s: %s is not on procfs (type %#lx): refusing to write", key, val, path, (unsigned long)st.f_type);
	size_t n = strlen(val);
	if (write(fd, val, n) != (ssize_t)n)
		fail(errno, "sysctl %s=%s", key, val);
	close(fd);
}

static void op_ropath(struct rd *r)
{
	const char *path = str(r);
	int fd = openat2_(AT_FDCWD, path, O_PATH | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return;
		fail(errno, "readonly %s", path);
	}
	if (clone_mount_onto(fd, fd, 1, C_MOUNT_ATTR_RDONLY | C_MOUNT_ATTR_NOSUID | C_MOUNT_ATTR_NODEV | C_MOUNT_ATTR_NOEXEC) < 0)
		fail(errno, "readonly %s", path);
	close(fd);
}

static void op_rlimit(struct rd *r)
{
	int res = num(r);
	struct rlimit rl = {.rlim_cur = num(r), .rlim_max = num(r)};
	const char *name = str(r);
	if (setrlimit(res, &rl) == 0)
		return;
	int e = errno;
	struct rlimit cur;
	getrlimit(res, &cur);
	if (e == EPERM && rl.rlim_max > cur.rlim_max)
		fail(e, "rlimit %s hard %llu: above the current hard limit %llu and raising it needs CAP_SYS_RESOURCE", name,
		     (unsigned long long)rl.rlim_max, (unsigned long long)cur.rlim_max);
	fail(e, "rlimit %s soft %llu hard %llu", name, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

static void op_seccomp(struct rd *r)
{
	sc_flags = num(r);
	uint32_t len;
	const char *f = field(r, &len);
	if (len == 0 || len % sizeof(struct sock_filter) || len / sizeof(struct sock_filter) > BPF_MAXINSNS)
		fail(0, "seccomp: bad program");
	sc_filter = malloc(len);
	if (sc_filter == NULL)
		fail(ENOMEM, "seccomp");
	memcpy(sc_filter, f, len);
	sc_len = len / sizeof(struct sock_filter);
}

static void load_seccomp(void)
{
	struct sock_fprog prog = {.len = sc_len, .filter = sc_filter};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, sc_flags, &prog) < 0) {
		if (errno == EACCES)
			fail(errno, "load seccomp: seccomp: load filter: set no_new_privs first or hold CAP_SYS_ADMIN");
		fail(errno, "load seccomp: seccomp: load filter (flags %#x)", sc_flags);
	}
	sc_filter = NULL;
}

// ---- the process

static int is_exec_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
}

// look_path is lookPath of init_linux.go (inside the root already).
static const char *look_path(const char *name, const char *path)
{
	if (strchr(name, '/')) {
		if (name[0] == '/') {
			struct stat st;
			if (stat(name, &st) < 0)
				fail(errno, "exec: \"%s\": stat %s", name, name);
			if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
				fail(EACCES, "exec: \"%s\"", name);
		}
		return name;
	}
	static char buf[8192];
	for (const char *p = path;;) {
		const char *e = strchrnul(p, ':');
		int l = e - p;
		if (l == 0 || (l == 1 && p[0] == '.'))
			snprintf(buf, sizeof(buf), "%s", name);
		else
			snprintf(buf, sizeof(buf), "%.*s/%s", l, p, name);
		if (is_exec_file(buf))
			return buf;
		if (!*e)
			break;
		p = e + 1;
	}
	fail(0, "exec: \"%s\": executable file not found in $PATH", name);
}

// split turns a blob of NUL-terminated strings into a NULL-terminated
// vector with room for extra more entries.
static char **split(const char *b, uint32_t len, int extra)
{
	int n = 0;
	for (uint32_t i = 0; i < len; i++)
		n += b[i] == 0;
	char **v = calloc(n + 1 + extra, sizeof(char *));
	if (v == NULL)
		fail(ENOMEM, "plan");
	for (int i = 0, off = 0; i < n; i++) {
		v[i] = (char *)b + off;
		off += strlen(b + off) + 1;
	}
	return v;
}

// with_home adds HOME when the process has none, as runc does: the home of
// uid in the container's /etc/passwd, else "/".
static void with_home(char **env, unsigned long uid)
{
	int n = 0;
	for (; env[n]; n++)
		if (strncmp(env[n], "HOME=", 5) == 0)
			return;
	static char home[4200];
	snprintf(home, sizeof(home), "HOME=/");
	FILE *f = fopen("/etc/passwd", "re");
	if (f) {
		char line[4096], id[32];
		snprintf(id, sizeof(id), "%lu", uid);
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "\n")] = 0;
			char *fl[7];
			int k = 0;
			char *s = line;
			for (; k < 7; k++) {
				fl[k] = s;
				char *c = strchr(s, ':');
				if (c == NULL) {
					k++;
					break;
				}
				*c = 0;
				s = c + 1;
			}
			if (k >= 7 && strcmp(fl[2], id) == 0 && fl[5][0]) {
				snprintf(home, sizeof(home), "HOME=%s", fl[5]);
				break;
			}
		}
		fclose(f);
	}
	env[n] = home;
}

static void term_handler(int sig)
{
	// as the Go runtime does for a signal nobody handles: die of it, and
	// if that is refused (pid 1 of a namespace) exit 2
	sigset_t s;
	signal(sig, SIG_DFL);
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(SIG_UNBLOCK, &s, NULL);
	kill(getpid(), sig);
	_exit(2);
}

// do_process: fields
//   cwd, havePath, PATH, preserveFDs, stateDirFd, uid, gid, umask (-1: 022),
//   groups (u32[]), bounding, effective, permitted, inheritable, ambient
//   (capability masks), lastCap, noNewPrivileges, args (NUL-separated),
//   env (NUL-separated)
__attribute__((noreturn)) static void do_process(struct rd *r)
{
	const char *cwd = str(r);
	int have_path = num(r);
	const char *pathenv = str(r);
	int preserve = num(r);
	int statefd = num(r);
	uint32_t uid = num(r), gid = num(r);
	int64_t umask_ = num(r);
	uint32_t glen;
	const char *groups = field(r, &glen);
	uint64_t bset = num(r), eff = num(r), perm = num(r), inh = num(r), amb = num(r);
	int last = num(r);
	int nnp = num(r);
	uint32_t alen, elen;
	const char *args = field(r, &alen);
	const char *envb = field(r, &elen);
	char **argv = split(args, alen, 0);
	char **envp = split(envb, elen, 1);
	if (argv[0] == NULL)
		fail(0, "process.args: empty");
	if (!have_path)
		pathenv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

	// As runc does: a command missing from PATH, or an absolute path that
	// is missing or not executable, fails create rather than start.
	if (!strchr(argv[0], '/') || argv[0][0] == '/')
		look_path(argv[0], pathenv);
	if (nsexec_send(MSG_READY, NULL, 0) < 0)
		fail(errno, "ready");
	ready_sent = 1;

	// Wait for start: opening the fifo for writing blocks until a reader
	// comes. The state dir fd was opened before pivot_root.
	int ff = openat(statefd, "exec.fifo", O_WRONLY | O_CLOEXEC);
	if (ff < 0)
		fail(errno, "open exec fifo");
	if (write(ff, "0", 1) != 1)
		fail(errno, "write exec fifo");
	close(ff);
	close(statefd);

	// No fd of ours may reach the container (CVE-2024-21626): everything
	// above stdio and the preserved fds is closed on exec, before chdir.
	if (syscall(SYS_close_range, 3 + preserve, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		fail(errno, "close_range");
	if (chdir(cwd) < 0)
		fail(errno, "cwd %s", cwd);
	// the kernel reports a cwd outside our root as "(unreachable)...":
	// refuse it (a cwd of /proc/self/fd/N naming a leaked host dir)
	char wd[4096];
	long n = syscall(SYS_getcwd, wd, sizeof(wd));
	if (n <= 0 || wd[0] != '/')
		fail(0, "cwd %s is outside the container root", cwd);
	const char *path = look_path(argv[0], pathenv);
	with_home(envp, uid);

	for (int i = 0; i <= last; i++) {
		if (bset & (1ULL << i))
			continue;
		if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
			fail(errno, "drop capability %d from the bounding set", i);
	}
	if (sc_filter && !nnp)
		load_seccomp(); // needs CAP_SYS_ADMIN without no_new_privs

	umask(umask_ < 0 ? 022 : (mode_t)umask_);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail(errno, "keepcaps");
	if (syscall(SYS_setgroups, glen / 4, glen ? groups : NULL) < 0)
		fail(errno, "setgroups");
	if (syscall(SYS_setresgid, gid, gid, gid) < 0)
		fail(errno, "setgid %u", gid);
	if (syscall(SYS_setresuid, uid, uid, uid) < 0)
		fail(errno, "setuid %u", uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail(errno, "keepcaps");

	// CVE-2022-29162: inheritable is exactly the spec's
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)((eff & perm) >> (32 * i));
		data[i].permitted = (uint32_t)(perm >> (32 * i));
		data[i].inheritable = (uint32_t)(inh >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail(errno, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		fail(errno, "clear ambient capabilities");
	for (int i = 0; i <= last; i++) {
		if ((amb & (1ULL << i)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0)
			fail(errno, "raise ambient capability %d", i);
	}
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(errno, "no_new_privs");
	if (sc_filter)
		load_seccomp();

	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(path, argv, envp);
	fail(errno, "exec %s", argv[0]);
}

void cinit_run(const char *plan, uint32_t len)
{
	static const int sigs[] = {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM,
				   SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO, SIGPWR};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], term_handler);
	for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
		signal(s, term_handler);

	// As the Go runtime does at start: stdio that the caller left closed
	// becomes /dev/null (else the container's first open takes fd 0).
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
	}

	struct rd all = {plan, len};
	while (all.n > 0) {
		uint32_t hdr[2];
		if (all.n < 8)
			fail(0, "plan: truncated op");
		memcpy(hdr, all.p, 8);
		if (hdr[1] > all.n - 8)
			fail(0, "plan: truncated op %u", hdr[0]);
		struct rd r = {all.p + 8, hdr[1]};
		all.p += 8 + hdr[1];
		all.n -= 8 + hdr[1];
		switch (hdr[0]) {
		case OP_ROOT_PREP:
			op_root_prep(&r);
			break;
		case OP_MOUNT:
			op_mount(&r);
			break;
		case OP_REMOUNT:
			op_remount(&r);
			break;
		case OP_DEVICE:
			op_device(&r);
			break;
		case OP_DEVLINKS:
			op_devlinks();
			break;
		case OP_HOOKS:
			op_hooks();
			break;
		case OP_PIVOT:
			op_pivot(&r);
			break;
		case OP_MKCWD:
			op_mkcwd(&r);
			break;
		case OP_SETPROP:
			if (mount("", "/", NULL, num(&r), NULL) < 0)
				fail(errno, "rootfsPropagation");
			break;
		case OP_MASK:
			op_mask(&r);
			break;
		case OP_SYSCTL:
			op_sysctl(&r);
			break;
		case OP_ROPATH:
			op_ropath(&r);
			break;
		case OP_ROOT_RO:
			if (remount_bind("/", MS_RDONLY) < 0)
				fail(errno, "make root read-only");
			break;
		case OP_HOSTNAME: {
			const char *h = str(&r);
			if (sethostname(h, strlen(h)) < 0)
				fail(errno, "sethostname");
			break;
		}
		case OP_DOMAIN: {
			const char *d = str(&r);
			if (setdomainname(d, strlen(d)) < 0)
				fail(errno, "setdomainname");
			break;
		}
		case OP_KEYRING: {
			// a fresh session keyring so the container cannot read the host's
			const char *name = str(&r);
			if (syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, name) < 0 && errno != ENOSYS &&
			    errno != EACCES && errno != EPERM)
				fail(errno, "join session keyring");
			break;
		}
		case OP_RLIMIT:
			op_rlimit(&r);
			break;
		case OP_SECCOMP:
			op_seccomp(&r);
			break;
		case OP_PROCESS:
			do_process(&r);
		default:
			fail(0, "plan: unknown op %u", hdr[0]);
		}
	}
	fail(0, "plan: no process");
}
