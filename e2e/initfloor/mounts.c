// Prototype for docs/performance.md "A C path for the init": the mounts,
// device nodes, masked and read-only paths and pivot_root of Berth's spec
// on a cgroup v1 host with a cgroup namespace, done in C with the new mount
// API, every target resolved with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS
// ...) under the root. Each iteration is a forked child that unshares mount,
// cgroup, ipc and uts namespaces, does the work and reports its own thread
// CPU time for the namespaces and for the rest. Not Berth code: a measure.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int xopenat2(int dir, const char *p, int flags, int mode) {
	struct open_how h = {.flags = flags, .mode = mode,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	return syscall(SYS_openat2, dir, p, &h, sizeof h);
}
static int xopenat2x(int dir, const char *p, int flags) { // crossing mounts (paths under /proc, /sys)
	struct open_how h = {.flags = flags, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
	return syscall(SYS_openat2, dir, p, &h, sizeof h);
}
#define die(what) do { fprintf(stderr, "%s: %s\n", what, strerror(errno)); _exit(1); } while (0)

// A new filesystem attached at the directory (or file) fd target.
static void fsmnt(int target, const char *type, const char *source, const char **opts, unsigned attr) {
	int fs = syscall(SYS_fsopen, type, FSOPEN_CLOEXEC);
	if (fs < 0) die(type);
	if (source && syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", source, 0) < 0) die("source");
	for (; opts && *opts; opts++) {
		char k[64]; const char *eq = strchr(*opts, '=');
		if (eq) {
			snprintf(k, sizeof k, "%.*s", (int)(eq - *opts), *opts);
			if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, k, eq + 1, 0) < 0) die(*opts);
		} else if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, *opts, NULL, 0) < 0) die(*opts);
	}
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) die("create");
	int m = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attr);
	if (m < 0) die("fsmount");
	if (syscall(SYS_move_mount, m, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) die("move_mount");
	close(m); close(fs);
}

// A directory under root, made if missing (one level: its parent exists).
static int dir(int root, const char *p) {
	int fd = xopenat2(root, p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0 && errno == ENOENT) {
		const char *slash = strrchr(p, '/');
		char parent[256]; snprintf(parent, sizeof parent, "%.*s", (int)(slash - p), p);
		int pfd = xopenat2(root, parent[0] ? parent : "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
		if (pfd < 0) die(parent);
		if (mkdirat(pfd, slash + 1, 0755) < 0 && errno != EEXIST) die(p);
		close(pfd);
		fd = xopenat2(root, p, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
	}
	if (fd < 0) die(p);
	return fd;
}

static void bindfile(int root, const char *src, const char *dst, unsigned attr) {
	int t = xopenat2(root, dst, O_PATH | O_CLOEXEC, 0);
	if (t < 0 && errno == ENOENT) {
		int c = xopenat2(root, dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (c < 0) die(dst);
		close(c);
		t = xopenat2(root, dst, O_PATH | O_CLOEXEC, 0);
	}
	if (t < 0) die(dst);
	int tree = syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0) die(src);
	if (attr) {
		struct mount_attr a = {.attr_set = attr};
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &a, sizeof a) < 0) die("setattr");
	}
	if (syscall(SYS_move_mount, tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) die("move bind");
	close(tree); close(t);
}

static const char *ctrls[] = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd", NULL};
static const char *masked[] = {"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap", NULL};
static const char *ronly[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};

static void work(const char *rootfs, const char *etc) {
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) die("slave");
	// The root: a bind of itself (libcontainer does the same), opened once.
	int tree = syscall(SYS_open_tree, AT_FDCWD, rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
	if (tree < 0) die("root tree");
	if (syscall(SYS_move_mount, tree, "", AT_FDCWD, rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0) die("root move");
	close(tree);
	int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) die(rootfs);

	int fd;
	fsmnt(fd = dir(root, "/proc"), "proc", "proc", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV); close(fd);
	const char *devo[] = {"mode=755", "size=65536k", NULL};
	fsmnt(fd = dir(root, "/dev"), "tmpfs", "tmpfs", devo, MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME); close(fd);
	const char *ptso[] = {"newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL};
	fsmnt(fd = dir(root, "/dev/pts"), "devpts", "devpts", ptso, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC); close(fd);
	fsmnt(fd = dir(root, "/sys"), "sysfs", "sysfs", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY); close(fd);
	const char *cgo[] = {"mode=755", NULL};
	fsmnt(fd = xopenat2x(root, "/sys/fs/cgroup", O_PATH | O_DIRECTORY | O_CLOEXEC), "tmpfs", "tmpfs", cgo,
		MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV);
	close(fd);
	fd = xopenat2x(root, "/sys/fs/cgroup", O_PATH | O_DIRECTORY | O_CLOEXEC); // the tmpfs now on it
	if (fd < 0) die("cgroup dir");
	for (const char **c = ctrls; *c; c++) {
		if (mkdirat(fd, *c, 0755) < 0) die(*c);
		int cfd = openat(fd, *c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); // a tmpfs made just now
		if (cfd < 0) die(*c);
		char name[32]; snprintf(name, sizeof name, "name=%s", *c);
		const char *o[] = {strcmp(*c, "systemd") ? *c : name, NULL};
		fsmnt(cfd, "cgroup", strcmp(*c, "systemd") ? "cgroup" : "systemd", o,
			MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY);
		close(cfd);
	}
	close(fd);
	fsmnt(fd = dir(root, "/dev/mqueue"), "mqueue", "mqueue", NULL, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV); close(fd);
	const char *shmo[] = {"mode=1777", "size=65536k", NULL};
	fsmnt(fd = dir(root, "/dev/shm"), "tmpfs", "shm", shmo, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODEV); close(fd);
	char src[512];
	for (const char **f = (const char *[]){"hosts", "hostname", "resolv.conf", NULL}; *f; f++) {
		char dst[64]; snprintf(dst, sizeof dst, "/etc/%s", *f);
		snprintf(src, sizeof src, "%s/%s", etc, *f);
		bindfile(root, src, dst, 0);
	}
	// /dev: the standard nodes, links and ptmx.
	int dev = dir(root, "/dev");
	int devfd = openat(dev, ".", O_DIRECTORY | O_CLOEXEC); // the tmpfs mounted above
	struct { const char *n; int maj, min; } nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
		{"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
	for (unsigned i = 0; i < sizeof nodes / sizeof *nodes; i++) {
		if (mknodat(devfd, nodes[i].n, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min)) < 0) die(nodes[i].n);
		if (fchownat(devfd, nodes[i].n, 0, 0, AT_SYMLINK_NOFOLLOW) < 0) die("chown");
		if (fchmodat(devfd, nodes[i].n, 0666, 0) < 0) die("chmod"); // past the umask
	}
	const char *links[][2] = {{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"}, {"pts/ptmx", "ptmx"}};
	for (unsigned i = 0; i < sizeof links / sizeof *links; i++)
		if (symlinkat(links[i][0], devfd, links[i][1]) < 0) die(links[i][1]);
	close(devfd); close(dev);
	// Masked paths: /dev/null over files, an empty read-only tmpfs over directories.
	snprintf(src, sizeof src, "%s/dev/null", rootfs);
	for (const char **m = masked; *m; m++) {
		int t = xopenat2x(root, *m, O_PATH | O_CLOEXEC);
		if (t < 0) continue; // absent: nothing to hide
		struct stat st;
		fstat(t, &st);
		if (S_ISDIR(st.st_mode)) {
			fsmnt(t, "tmpfs", "tmpfs", NULL, MOUNT_ATTR_RDONLY);
		} else {
			int tree = syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
			if (tree < 0) die("null tree");
			if (syscall(SYS_move_mount, tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) die("mask");
			close(tree);
		}
		close(t);
	}
	// Read-only paths: a read-only bind of themselves.
	for (const char **r = ronly; *r; r++) {
		int t = xopenat2x(root, *r, O_PATH | O_CLOEXEC);
		if (t < 0) continue;
		int tree = syscall(SYS_open_tree, t, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
		if (tree < 0) die("ro tree");
		struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
		if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0) die("ro attr");
		if (syscall(SYS_move_mount, tree, "", t, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) die("ro move");
		close(tree); close(t);
	}
	// pivot_root into it, the old root detached.
	if (fchdir(root) < 0) die("fchdir");
	if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
	if (umount2(".", MNT_DETACH) < 0) die("umount old");
	if (chdir("/") < 0) die("chdir");
}

static long long cpu_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc < 4) { fprintf(stderr, "usage: mounts ROOTFS ETCDIR N [nomounts]\n"); return 2; }
	int n = atoi(argv[3]), only_ns = argc > 4;
	long long *ns = calloc(n, sizeof *ns), *mt = calloc(n, sizeof *mt);
	for (int i = 0; i < n; i++) {
		int p[2];
		if (pipe(p) < 0) die("pipe");
		pid_t pid = fork();
		if (pid == 0) {
			long long t[3];
			t[0] = cpu_ns();
			if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWIPC | CLONE_NEWUTS) < 0) die("unshare");
			t[1] = cpu_ns();
			if (!only_ns) work(argv[1], argv[2]);
			t[2] = cpu_ns();
			if (getenv("MOUNTS_SHOW")) { if (system("cat /proc/self/mountinfo; ls -l /dev; cat /proc/self/cgroup") != 0) _exit(1); }
			long long d[2] = {t[1] - t[0], t[2] - t[1]};
			if (write(p[1], d, sizeof d) != sizeof d) _exit(1);
			_exit(0);
		}
		close(p[1]);
		long long d[2];
		if (read(p[0], d, sizeof d) != sizeof d) { fprintf(stderr, "child %d failed\n", i); return 1; }
		close(p[0]);
		int st;
		waitpid(pid, &st, 0);
		ns[i] = d[0]; mt[i] = d[1];
	}
	qsort(ns, n, sizeof *ns, cmp);
	qsort(mt, n, sizeof *mt, cmp);
	printf("unshare ms: median %.3f [%.3f-%.3f]; mounts+devices+masks+pivot ms: median %.3f [%.3f-%.3f] (n=%d)\n",
		ns[n / 2] / 1e6, ns[0] / 1e6, ns[n - 1] / 1e6, mt[n / 2] / 1e6, mt[0] / 1e6, mt[n - 1] / 1e6, n);
	return 0;
}
