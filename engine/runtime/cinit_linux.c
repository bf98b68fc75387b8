// The C container init: libcontainer's init stage ("runc:[2:INIT]") done
// in C, for a configuration the shim found it can serve (cinit_linux.go).
// When this process is a container's init (_LIBCONTAINER_INITTYPE=standard)
// and its first inherited file is a plan (a sealed memfd named berth-cinit that
// starts with BERTHCINIT1), its constructor runs the plan in nsexec's
// stage-2 child, before Go starts: mounts (the new mount API, every target resolved under
// the root with openat2), /dev's nodes and links, pivot_root, hostname,
// sysctls, read-only and masked paths, the session keyring, the user,
// capabilities, no_new_privs and the seccomp program; it speaks
// libcontainer's sync protocol (procHooks/procHooksDone,
// procReady/procRun, procError with the step named), waits at the exec
// fifo and execs the command. Any other process returns at once.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/keyctl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "entry_linux.h"

extern void berth_reset_ignored_signals(void);

#define PLAN_FD 3
#define MAGIC "BERTHCINIT1"

static int sync_fd = -1;

// ci_fail sends the failed step to the parent as libcontainer's procError
// and exits; the parent reports "error during container init: STEP: ERR".
static void ci_failf(const char *fmt, ...)
{
	char msg[1024], esc[2200], pkt[2400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t j = 0;
	for (size_t i = 0; msg[i] && j < sizeof(esc) - 8; i++) {
		unsigned char c = msg[i];
		if (c == '"' || c == '\\') {
			esc[j++] = '\\';
			esc[j++] = c;
		} else if (c < 0x20) {
			j += snprintf(esc + j, sizeof(esc) - j, "\\u%04x", c);
		} else {
			esc[j++] = c;
		}
	}
	esc[j] = 0;
	int n = snprintf(pkt, sizeof(pkt), "{\"type\":\"procError\",\"flags\":0,\"arg\":{\"message\":\"%s\"}}", esc);
	if (sync_fd < 0 || write(sync_fd, pkt, n) != n)
		dprintf(2, "berth: container init: %s\n", msg);
	_exit(255);
}

static void ci_fail(const char *what, int err)
{
	ci_failf("%s: %s", what, strerror(err));
}

// The sync protocol: one JSON object per SOCK_SEQPACKET packet.
static void sync_send(const char *type)
{
	char pkt[128];
	int n = snprintf(pkt, sizeof(pkt), "{\"type\":\"%s\",\"flags\":0}", type);
	if (write(sync_fd, pkt, n) != n)
		ci_fail("write sync", errno);
}

static void sync_expect(const char *type)
{
	char pkt[4096], want[128];
	ssize_t n = read(sync_fd, pkt, sizeof(pkt) - 1);
	if (n < 0)
		ci_fail("read sync", errno);
	if (n == 0)
		ci_failf("read sync: parent closed the pipe waiting for %s", type);
	pkt[n] = 0;
	snprintf(want, sizeof(want), "\"type\":\"%s\"", type);
	if (strstr(pkt, want) == NULL)
		ci_failf("unexpected synchronisation: got %s, expected %s", pkt, type);
}

static int env_int(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == 0)
		return -1;
	char *end;
	long n = strtol(v, &end, 10);
	return *end == 0 && n >= 0 && n < 1 << 20 ? (int)n : -1;
}

// drain_config reads libcontainer's init configuration (one JSON object)
// off the init pipe, so the parent's write never blocks; the plan has what
// the C init needs.
static void drain_config(int fd)
{
	int depth = 0, started = 0, in_str = 0, esc = 0;
	char buf[8192];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ci_fail("read init config", n < 0 ? errno : EPIPE);
		for (ssize_t i = 0; i < n; i++) {
			char c = buf[i];
			if (in_str) {
				if (esc)
					esc = 0;
				else if (c == '\\')
					esc = 1;
				else if (c == '"')
					in_str = 0;
			} else if (c == '"') {
				in_str = 1;
			} else if (c == '{' || c == '[') {
				depth++;
				started = 1;
			} else if (c == '}' || c == ']') {
				if (--depth == 0 && started)
					return;
			}
		}
	}
}

// The plan: NUL-terminated words (cinit_linux.go writes it).
static char *plan, *plan_end, *cur;

static const char *word(void)
{
	if (cur >= plan_end)
		ci_failf("plan: truncated");
	const char *w = cur;
	cur += strlen(cur) + 1;
	return w;
}

static unsigned long long num(void)
{
	const char *w = word();
	char *end;
	unsigned long long n = strtoull(w, &end, 10);
	if (*w == 0 || *end != 0)
		ci_failf("plan: bad number %s", w);
	return n;
}

static int is_plan(int fd)
{
	char link[64], want[] = "/memfd:berth-cinit";
	char path[32];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < (ssize_t)strlen(want))
		return 0;
	link[n] = 0;
	if (strncmp(link, want, strlen(want)) != 0)
		return 0;
	char head[sizeof(MAGIC)];
	return pread(fd, head, sizeof(head), 0) == sizeof(head) && memcmp(head, MAGIC, sizeof(head)) == 0;
}

static void load_plan(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		ci_fail("plan", errno);
	if (fcntl(fd, F_GET_SEALS) != (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE))
		ci_failf("plan: not sealed");
	plan = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (plan == MAP_FAILED)
		ci_fail("plan", errno);
	plan_end = plan + st.st_size;
	if (plan_end[-1] != 0)
		ci_failf("plan: not terminated");
	close(fd);
	cur = plan;
	if (strcmp(word(), MAGIC) != 0)
		ci_failf("plan: bad magic");
}

// Path resolution under the root: never out of it, never through a magic
// link; with nosym, through no symlink at all.
static int in_root(int root, const char *path, int flags, int mode, int nosym)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC,
		.mode = mode,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (nosym ? RESOLVE_NO_SYMLINKS : 0),
	};
	int fd;
	do
		fd = syscall(SYS_openat2, root, path, &how, sizeof(how));
	while (fd < 0 && errno == EAGAIN);
	return fd;
}

static int mkdir_all(int root, const char *path, int nosym);

// parent_dir makes the directory that holds path (absolute) under root, and
// returns an O_PATH descriptor of it, with base the last element of path.
static int parent_dir(int root, const char *path, int nosym, const char **base)
{
	char parent[4096];
	const char *slash = strrchr(path, '/');
	if (slash == NULL || slash[1] == 0 || path[0] != '/' || strlen(path) >= sizeof(parent)) {
		errno = EINVAL;
		return -1;
	}
	*base = slash + 1;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	return parent[0] ? mkdir_all(root, parent, nosym) : in_root(root, "/", O_PATH | O_DIRECTORY, 0, 1);
}

// mkdir_all makes every missing directory of path under root and returns
// an O_PATH descriptor of it.
static int mkdir_all(int root, const char *path, int nosym)
{
	int fd = in_root(root, path, O_PATH | O_DIRECTORY, 0, nosym);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	const char *base;
	int pfd = parent_dir(root, path, nosym, &base);
	if (pfd < 0)
		return -1;
	if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		close(pfd);
		errno = e;
		return -1;
	}
	close(pfd);
	return in_root(root, path, O_PATH | O_DIRECTORY, 0, nosym);
}

// target opens a mount target under root: a directory, or a file for a bind
// of a file, made when missing.
static int target(int root, const char *path, int dir, int nosym)
{
	if (dir) {
		int fd = mkdir_all(root, path, nosym);
		if (fd < 0)
			ci_failf("mount target %s: %s", path, strerror(errno));
		return fd;
	}
	int fd = in_root(root, path, O_PATH, 0, nosym);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		ci_failf("mount target %s: %s", path, strerror(errno));
	const char *base;
	int pfd = parent_dir(root, path, nosym, &base);
	if (pfd < 0)
		ci_failf("mount target %s: %s", path, strerror(errno));
	close(pfd);
	int c = in_root(root, path, O_CREAT | O_WRONLY, 0644, nosym);
	if (c < 0)
		ci_failf("mount target %s: %s", path, strerror(errno));
	close(c);
	fd = in_root(root, path, O_PATH, 0, nosym);
	if (fd < 0)
		ci_failf("mount target %s: %s", path, strerror(errno));
	return fd;
}

static void set_prop(int mnt, unsigned long long prop, const char *dst)
{
	unsigned long long kinds[] = {MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE};
	for (int i = 0; i < 4; i++) {
		if (!(prop & kinds[i]))
			continue;
		struct mount_attr a = {.propagation = kinds[i]};
		if (syscall(SYS_mount_setattr, mnt, "", AT_EMPTY_PATH | (prop & MS_REC ? AT_RECURSIVE : 0), &a, sizeof(a)) < 0)
			ci_failf("propagation of %s: %s", dst, strerror(errno));
	}
}

// fs_mount attaches a new file system of type at the descriptor t.
static int fs_mount(int t, const char *type, const char *source, const char *data, unsigned long long attrs, const char *dst)
{
	int fs = syscall(SYS_fsopen, type, FSOPEN_CLOEXEC);
	if (fs < 0)
		ci_failf("mount %s on %s: fsopen: %s", type, dst, strerror(errno));
	if (source && *source && syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", source, 0) < 0)
		ci_failf("mount %s on %s: source: %s", type, dst, strerror(errno));
	char opts[4096];
	snprintf(opts, sizeof(opts), "%s", data ? data : "");
	for (char *save, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(o, '=');
		int r;
		if (eq) {
			*eq = 0;
			r = syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, o, eq + 1, 0);
		} else {
			r = syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, o, NULL, 0);
		}
		if (r < 0)
			ci_failf("mount %s on %s: option %s: %s", type, dst, o, strerror(errno));
	}
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		ci_failf("mount %s on %s: %s", type, dst, strerror(errno));
	int m = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, (unsigned)attrs);
	if (m < 0)
		ci_failf("mount %s on %s: fsmount: %s", type, dst, strerror(errno));
	close(fs);
	if (syscall(SYS_move_mount, m, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		ci_failf("mount %s on %s: move_mount: %s", type, dst, strerror(errno));
	return m;
}

// Mounts to make read-only once all is mounted (tmpfs, /dev).
static int rolater_fd[64];
static int rolater_n;

// cgroup_v1 mounts a tmpfs at dst and in it every v1 hierarchy of the
// host, as libcontainer does with a cgroup namespace: each directory is
// named as the host's mount point, the hierarchy mounted afresh (rooted at
// the container's cgroup by the namespace), and a link for each controller
// of a combined one.
static void cgroup_v1(int root, const char *dst, unsigned long long attrs, unsigned long long prop)
{
	int t = target(root, dst, 1, 0);
	int m = fs_mount(t, "tmpfs", "tmpfs", "mode=755", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, dst);
	set_prop(m, prop, dst);
	close(t);
	int dir = openat(m, ".", O_PATH | O_DIRECTORY | O_CLOEXEC); // the tmpfs just made
	close(m);
	if (dir < 0)
		ci_fail("cgroup tmpfs", errno);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		ci_fail("read mountinfo", errno);
	char line[4096], seen[4096] = "|";
	while (fgets(line, sizeof(line), f)) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - TYPE SOURCE SUPEROPTS
		char *sep = strstr(line, " - ");
		if (sep == NULL || strncmp(sep, " - cgroup ", 10) != 0)
			continue;
		char mp[1024], super[1024], data[1100] = "";
		if (sscanf(line, "%*s %*s %*s %*s %1023s", mp) != 1 || sscanf(sep, " - cgroup %*s %1023s", super) != 1)
			continue;
		const char *name = strrchr(mp, '/');
		name = name ? name + 1 : mp;
		if (*name == 0 || strchr(name, '\\'))
			continue;
		// The hierarchy's controllers (and name=), from its options.
		for (char *save, *o = strtok_r(super, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
			if (!strcmp(o, "rw") || !strcmp(o, "ro") || !strcmp(o, "clone_children") || !strcmp(o, "noprefix") ||
			    !strcmp(o, "xattr") || !strcmp(o, "cpuset_v2_mode") || !strncmp(o, "release_agent=", 14))
				continue;
			if (strlen(data) + strlen(o) + 2 >= sizeof(data))
				ci_failf("cgroup %s: options too long", name);
			if (*data)
				strcat(data, ",");
			strcat(data, o);
		}
		char key[1100];
		snprintf(key, sizeof(key), "|%s|", data);
		if (*data == 0 || strstr(seen, key))
			continue;
		if (strlen(seen) + strlen(data) + 2 >= sizeof(seen))
			ci_failf("cgroup: too many hierarchies");
		strcat(seen, data);
		strcat(seen, "|");
		if (mkdirat(dir, name, 0755) < 0)
			ci_failf("cgroup %s: %s", name, strerror(errno));
		int c = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (c < 0)
			ci_failf("cgroup %s: %s", name, strerror(errno));
		const char *source = strncmp(data, "name=", 5) == 0 ? data + 5 : "cgroup";
		int cm = fs_mount(c, "cgroup", source, data, attrs | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, dst);
		close(cm);
		close(c);
		if (strchr(name, ',')) {
			char each[1100];
			snprintf(each, sizeof(each), "%s", name);
			for (char *save, *s = strtok_r(each, ",", &save); s; s = strtok_r(NULL, ",", &save))
				if (symlinkat(name, dir, s) < 0 && errno != EEXIST)
					ci_failf("cgroup link %s: %s", s, strerror(errno));
		}
	}
	fclose(f);
	close(dir);
}

static void do_mount(int root)
{
	const char *dev = word(), *src = word(), *dst = word(), *data = word();
	unsigned long long attrs = num(), prop = num(), rec = num(), rolater = num();
	if (strcmp(dev, "bind") == 0) {
		int tree = syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0));
		if (tree < 0)
			ci_failf("bind %s on %s: %s", src, dst, strerror(errno));
		struct stat st;
		if (fstat(tree, &st) < 0)
			ci_fail("bind source", errno);
		int t = target(root, dst, S_ISDIR(st.st_mode), 0);
		if (attrs) {
			// The top mount only, as libcontainer's remount.
			struct mount_attr a = {.attr_set = attrs};
			if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
				ci_failf("bind %s on %s: attributes: %s", src, dst, strerror(errno));
		}
		if (syscall(SYS_move_mount, tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			ci_failf("bind %s on %s: %s", src, dst, strerror(errno));
		set_prop(tree, prop, dst);
		close(tree);
		close(t);
		return;
	}
	if (strcmp(dev, "cgroup") == 0) {
		struct stat st;
		if (stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0) {
			int t = target(root, dst, 1, 0);
			close(fs_mount(t, "cgroup2", src, data, attrs, dst));
			close(t);
		} else {
			cgroup_v1(root, dst, attrs & MOUNT_ATTR_RDONLY, prop);
		}
		return;
	}
	// proc and sysfs only on a plain directory: never through a symlink.
	int nosym = strcmp(dev, "proc") == 0 || strcmp(dev, "sysfs") == 0;
	int t = target(root, dst, 1, nosym);
	int m = fs_mount(t, dev, src, data, attrs, dst);
	set_prop(m, prop, dst);
	close(t);
	if (rolater && rolater_n < 64)
		rolater_fd[rolater_n++] = m;
	else
		close(m);
}

static void do_dev(int root)
{
	const char *path = word(), *type = word();
	unsigned long long maj = num(), min = num(), mode = num(), uid = num(), gid = num();
	const char *base;
	int d = parent_dir(root, path, 1, &base);
	if (d < 0)
		ci_failf("device %s: %s", path, strerror(errno));
	int dfd = openat(d, ".", O_DIRECTORY | O_CLOEXEC);
	close(d);
	if (dfd < 0)
		ci_failf("device %s: %s", path, strerror(errno));
	mode_t kind = type[0] == 'b' ? S_IFBLK : type[0] == 'p' ? S_IFIFO : S_IFCHR;
	if (mknodat(dfd, base, kind | mode, makedev(maj, min)) < 0)
		ci_failf("mknod %s: %s", path, strerror(errno));
	if (fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		ci_failf("chown %s: %s", path, strerror(errno));
	if (fchmodat(dfd, base, mode, 0) < 0) // past the umask
		ci_failf("chmod %s: %s", path, strerror(errno));
	close(dfd);
}

static void dev_links(int root)
{
	int d = in_root(root, "/dev", O_DIRECTORY, 0, 1);
	if (d < 0)
		ci_fail("/dev", errno);
	const char *links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
	for (unsigned i = 0; i < sizeof(links) / sizeof(*links); i++)
		if (symlinkat(links[i][0], d, links[i][1]) < 0 && errno != EEXIST)
			ci_failf("link /dev/%s: %s", links[i][1], strerror(errno));
	struct stat st;
	if (stat("/proc/kcore", &st) == 0 && symlinkat("/proc/kcore", d, "core") < 0 && errno != EEXIST)
		ci_fail("link /dev/core", errno);
	if (unlinkat(d, "ptmx", 0) < 0 && errno != ENOENT)
		ci_fail("remove /dev/ptmx", errno);
	if (symlinkat("pts/ptmx", d, "ptmx") < 0)
		ci_fail("link /dev/ptmx", errno);
	close(d);
}

// loopback_up brings the namespace's loopback device up, as
// libcontainer's loopback network does.
static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		ci_fail("loopback: socket", errno);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		ci_fail("loopback: get flags", errno);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		ci_fail("loopback: set up", errno);
	close(s);
}

static void write_at(int root, const char *path, const char *val)
{
	int fd = in_root(root, path, O_WRONLY | O_TRUNC, 0, 1);
	if (fd < 0)
		ci_failf("write %s: %s", path, strerror(errno));
	size_t n = strlen(val);
	if (write(fd, val, n) != (ssize_t)n)
		ci_failf("write %s: %s", path, strerror(errno));
	close(fd);
}

static void readonly_path(int root, const char *path)
{
	int t = in_root(root, path, O_PATH, 0, 1);
	if (t < 0) {
		if (errno == ENOENT)
			return;
		ci_failf("can't make %s read-only: %s", path, strerror(errno));
	}
	int tree = syscall(SYS_open_tree, t, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (tree < 0)
		ci_failf("can't make %s read-only: %s", path, strerror(errno));
	struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0)
		ci_failf("can't make %s read-only: %s", path, strerror(errno));
	if (syscall(SYS_move_mount, tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		ci_failf("can't make %s read-only: %s", path, strerror(errno));
	close(tree);
	close(t);
}

static void mask_path(int root, const char *path)
{
	int t = in_root(root, path, O_PATH, 0, 1);
	if (t < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return;
		ci_failf("mask %s: %s", path, strerror(errno));
	}
	struct stat st;
	if (fstat(t, &st) < 0)
		ci_failf("mask %s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode)) {
		close(fs_mount(t, "tmpfs", "tmpfs", "ro", MOUNT_ATTR_RDONLY, path));
	} else {
		int tree = syscall(SYS_open_tree, AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
		if (tree < 0)
			ci_failf("mask %s: /dev/null: %s", path, strerror(errno));
		if (syscall(SYS_move_mount, tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			ci_failf("mask %s: %s", path, strerror(errno));
		close(tree);
	}
	close(t);
}

static void join_keyring(const char *name)
{
	long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0);
	if (id < 0) {
		if (errno == ENOSYS)
			return;
		ci_fail("join session keyring", errno);
	}
	char desc[512];
	long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof(desc) - 1, 0);
	if (n < 0)
		ci_fail("describe session keyring", errno);
	desc[sizeof(desc) - 1] = 0;
	unsigned perm;
	if (sscanf(desc, "%*[^;];%*[^;];%*[^;];%x;", &perm) != 1)
		ci_failf("session keyring: bad description");
	if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, perm | 0x80000, 0, 0) < 0)
		ci_fail("session keyring permissions", errno);
}

// fix_stdio makes the container's stdio its user's, as libcontainer does.
static void fix_stdio(uid_t uid, gid_t gid)
{
	struct stat null;
	if (stat("/dev/null", &null) < 0)
		ci_fail("stat /dev/null", errno);
	for (int fd = 0; fd < 3; fd++) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			ci_fail("stat stdio", errno);
		if (st.st_uid == uid || (S_ISCHR(st.st_mode) && st.st_rdev == null.st_rdev))
			continue;
		if (fchown(fd, uid, gid) < 0 && errno != EINVAL && errno != EPERM)
			ci_fail("chown stdio", errno);
	}
}

// home_of reads the user's home from the container's /etc/passwd ("/" when
// it has none), for a command started without HOME.
static const char *home_of(uid_t uid)
{
	static char home[1024];
	FILE *f = fopen("/etc/passwd", "re");
	if (f == NULL)
		return "/";
	char line[2048];
	while (fgets(line, sizeof(line), f)) {
		char *fields[7] = {0};
		char *s = line;
		int i = 0;
		for (; i < 7 && s; i++) {
			fields[i] = s;
			s = strchr(s, ':');
			if (s)
				*s++ = 0;
		}
		if (i == 7 && fields[2] && strtoul(fields[2], NULL, 10) == uid && fields[2][0] >= '0' && fields[2][0] <= '9') {
			snprintf(home, sizeof(home), "%s", fields[5]);
			fclose(f);
			return home;
		}
	}
	fclose(f);
	return "/";
}

// look_path finds the command as Go's exec.LookPath does in libcontainer's
// init, with the container's PATH.
static const char *look_path(const char *cmd, char **env)
{
	static char buf[4096];
	if (strchr(cmd, '/')) {
		struct stat st;
		if (stat(cmd, &st) < 0)
			ci_failf("exec: \"%s\": stat %s: %s", cmd, cmd, strerror(errno));
		if (S_ISDIR(st.st_mode) || !(st.st_mode & 0111))
			ci_failf("exec: \"%s\": permission denied", cmd);
		return cmd;
	}
	const char *path = "";
	for (char **e = env; *e; e++)
		if (strncmp(*e, "PATH=", 5) == 0)
			path = *e + 5;
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, n ? p : ".", cmd);
		struct stat st;
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
			return buf;
		if (!end)
			break;
		p = end;
	}
	ci_failf("exec: \"%s\": executable file not found in $PATH", cmd);
	return NULL;
}

static void cinit(void)
{
	berth_reset_ignored_signals();
	berth_entry_fail = ci_fail;
	int init_fd = env_int("_LIBCONTAINER_INITPIPE"), log_fd = env_int("_LIBCONTAINER_LOGPIPE");
	int fifo_fd = env_int("_LIBCONTAINER_FIFOFD");
	sync_fd = env_int("_LIBCONTAINER_SYNCPIPE");
	if (sync_fd < 0 || init_fd < 0 || fifo_fd < 0)
		ci_failf("init: libcontainer's environment is incomplete");
	pid_t parent = getppid();
	drain_config(init_fd);
	close(init_fd);
	load_plan(PLAN_FD);

	// The root: a recursive bind of itself under a slave /, as
	// libcontainer's prepareRoot does.
	if (strcmp(word(), "rootfs") != 0)
		ci_failf("plan: no rootfs");
	const char *rootfs = word();
	if (strcmp(word(), "rootprop") != 0)
		ci_failf("plan: no root propagation");
	unsigned long long rootprop = num();
	unsigned long flag = MS_SLAVE | MS_REC;
	if (rootprop & (MS_PRIVATE | MS_SLAVE))
		flag = rootprop & (MS_PRIVATE | MS_SLAVE | MS_REC);
	if (mount(NULL, "/", NULL, flag, NULL) < 0)
		ci_fail("root propagation", errno);
	if (mount(rootfs, rootfs, "bind", MS_BIND | MS_REC, NULL) < 0)
		ci_fail("bind rootfs", errno);
	int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		ci_fail("open rootfs", errno);

	const char *w;
	// Mounts, /dev, in the plan's order.
	for (;;) {
		char *mark = cur;
		w = word();
		if (strcmp(w, "mount") == 0)
			do_mount(root);
		else if (strcmp(w, "dev") == 0)
			do_dev(root);
		else if (strcmp(w, "devlinks") == 0)
			dev_links(root);
		else if (strcmp(w, "lo") == 0)
			loopback_up();
		else {
			cur = mark;
			break;
		}
	}
	sync_send("procHooks");
	sync_expect("procHooksDone");

	// pivot_root, the old root made a slave and detached.
	int oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (oldroot < 0 || fchdir(root) < 0)
		ci_fail("chdir rootfs", errno);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		ci_fail("pivot_root", errno);
	if (fchdir(oldroot) < 0)
		ci_fail("chdir old root", errno);
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		ci_fail("old root propagation", errno);
	if (umount2(".", MNT_DETACH) < 0)
		ci_fail("detach old root", errno);
	if (chdir("/") < 0)
		ci_fail("chdir /", errno);
	close(oldroot);
	close(root);
	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		ci_fail("open /", errno);
	if (rootprop && !(rootprop & (MS_PRIVATE | MS_SLAVE)) && mount(NULL, "/", NULL, rootprop, NULL) < 0)
		ci_fail("root propagation", errno);
	for (int i = 0; i < rolater_n; i++) {
		struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
		if (syscall(SYS_mount_setattr, rolater_fd[i], "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
			ci_fail("remount read-only", errno);
		close(rolater_fd[i]);
	}

	int nnp = 0, nsup = 0;
	uid_t uid = 0;
	gid_t gid = 0, groups[256];
	const char *caps = "-", *cwd = "";
	int seccomp_fd = -1;
	char *env[1024], *args[1024];
	int nenv = 0, nargs = 0, home = 0;
	mode_t umask_v = 022;
	int rofs = 0;
	for (;;) {
		w = word();
		if (strcmp(w, "end") == 0)
			break;
		if (strcmp(w, "hostname") == 0) {
			const char *h = word();
			if (sethostname(h, strlen(h)) < 0)
				ci_fail("sethostname", errno);
		} else if (strcmp(w, "domainname") == 0) {
			const char *d = word();
			if (setdomainname(d, strlen(d)) < 0)
				ci_fail("setdomainname", errno);
		} else if (strcmp(w, "sysctl") == 0) {
			const char *k = word(), *v = word();
			char path[512];
			snprintf(path, sizeof(path), "/proc/sys/%s", k);
			write_at(root, path, v);
		} else if (strcmp(w, "rofs") == 0) {
			rofs = 1;
		} else if (strcmp(w, "umask") == 0) {
			umask_v = num();
		} else if (strcmp(w, "ro") == 0) {
			readonly_path(root, word());
		} else if (strcmp(w, "mask") == 0) {
			mask_path(root, word());
		} else if (strcmp(w, "keyring") == 0) {
			join_keyring(word());
		} else if (strcmp(w, "nnp") == 0) {
			nnp = 1;
		} else if (strcmp(w, "user") == 0) {
			uid = num();
			gid = num();
		} else if (strcmp(w, "group") == 0) {
			if (nsup < 256)
				groups[nsup++] = num();
			else
				ci_failf("too many groups");
		} else if (strcmp(w, "caps") == 0) {
			caps = word();
		} else if (strcmp(w, "seccomp") == 0) {
			seccomp_fd = atoi(word());
		} else if (strcmp(w, "cwd") == 0) {
			cwd = word();
		} else if (strcmp(w, "env") == 0) {
			if (nenv >= 1022)
				ci_failf("too many environment variables");
			env[nenv] = (char *)word();
			home |= strncmp(env[nenv], "HOME=", 5) == 0;
			nenv++;
		} else if (strcmp(w, "arg") == 0) {
			if (nargs >= 1023)
				ci_failf("too many arguments");
			args[nargs++] = (char *)word();
		} else {
			ci_failf("plan: unknown step %s", w);
		}
	}
	env[nenv] = NULL;
	args[nargs] = NULL;
	if (nargs == 0)
		ci_failf("no command");
	if (*cwd) {
		int d = mkdir_all(root, cwd, 0);
		if (d >= 0)
			close(d);
	}
	// finalizeRootfs: the root read-only, the umask.
	if (rofs) {
		struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
		if (syscall(SYS_mount_setattr, root, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
			ci_fail("read-only root", errno);
	}
	umask(umask_v);
	close(root);
	int pdeath = 0;
	prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		ci_fail("prctl(SET_NO_NEW_PRIVS)", errno);

	sync_send("procReady");
	sync_expect("procRun");

	struct sock_filter *filter = NULL;
	uint32_t sflags = 0;
	uint16_t slen = 0;
	if (seccomp_fd >= 0)
		filter = berth_read_program(seccomp_fd, &sflags, &slen);
	if (filter && !nnp)
		berth_install_filter(filter, slen, sflags);

	// finalizeNamespace: chdir, HOME, bounding set, user, capabilities.
	int chdir_later = 0;
	if (*cwd && chdir(cwd) < 0) {
		if (errno != EACCES && errno != EPERM)
			ci_failf("chdir to cwd (\"%s\") set in config.json failed: %s", cwd, strerror(errno));
		chdir_later = 1;
	}
	char homevar[1100];
	if (!home) {
		snprintf(homevar, sizeof(homevar), "HOME=%s", home_of(uid));
		env[nenv++] = homevar;
		env[nenv] = NULL;
	}
	if (uid != 0)
		fix_stdio(uid, gid);
	if (strcmp(caps, "-") != 0)
		berth_drop_bounding(caps);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		ci_fail("keep caps", errno);
	if (setgroups(nsup, groups) < 0)
		ci_fail("setgroups", errno);
	if (syscall(SYS_setresgid, gid, gid, gid) < 0)
		ci_fail("setgid", errno);
	if (syscall(SYS_setresuid, uid, uid, uid) < 0)
		ci_fail("setuid", errno);
	if (chdir_later && chdir(cwd) < 0)
		ci_failf("chdir to cwd (\"%s\") set in config.json failed: %s", cwd, strerror(errno));
	char wd[4096];
	if (getcwd(wd, sizeof(wd)) == NULL || wd[0] != '/')
		ci_failf("current working directory is outside of container mount namespace root -- possible container breakout detected");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		ci_fail("clear keep caps", errno);
	if (strcmp(caps, "-") != 0)
		berth_set_caps(caps);
	if (pdeath && prctl(PR_SET_PDEATHSIG, pdeath, 0, 0, 0) < 0)
		ci_fail("restore pdeath signal", errno);
	if (getppid() != parent)
		kill(getpid(), SIGKILL);
	const char *path = look_path(args[0], env);
	if (filter && nnp)
		berth_install_filter(filter, slen, sflags);

	// Done: the parent's start returns at the pipe's end; then wait at
	// the exec fifo for start.
	close(sync_fd);
	sync_fd = -1;
	if (log_fd >= 0)
		close(log_fd);
	char fifo[64];
	snprintf(fifo, sizeof(fifo), "/proc/self/fd/%d", fifo_fd);
	int ff = open(fifo, O_WRONLY | O_CLOEXEC);
	if (ff < 0) {
		dprintf(2, "berth: container init: reopen exec fifo: %s\n", strerror(errno));
		_exit(255);
	}
	if (write(ff, "0", 1) != 1) {
		dprintf(2, "berth: container init: write exec fifo: %s\n", strerror(errno));
		_exit(255);
	}
	close(ff);
	close(fifo_fd);
	if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
		for (int fd = 3; fd < 65536; fd++)
			close(fd);
	execve(path, args, env);
	int err = errno;
	dprintf(2, "berth: exec %s: %s\n", args[0], strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}

// nsexec is nsenter's (another package): weak, so this package links alone.
extern void nsexec(void) __attribute__((weak));

// The constructor runs at nsenter's priority, so with the same C library
// and constructors set up as nsexec's own call. Which of the two runs first
// is link order: today this one. If nsexec has not run yet it is called
// here (stages 0 and 1 exit inside it; stage 2 returns); if it has, this
// is stage 2 already.
__attribute__((constructor)) static void berth_cinit(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "init") != 0)
		return;
	const char *t = getenv("_LIBCONTAINER_INITTYPE");
	if (t == NULL || strcmp(t, "standard") != 0 || !is_plan(PLAN_FD))
		return;
	char name[17] = {0};
	if (prctl(PR_GET_NAME, name, 0, 0, 0) < 0 || strcmp(name, "runc:[2:INIT]") != 0) {
		if (nsexec == NULL) {
			dprintf(2, "berth: container init: no nsexec in this binary\n");
			_exit(255);
		}
		nsexec();
	}
	cinit();
}
