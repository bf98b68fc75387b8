//go:build berth_helper

// The front path: before the Go runtime starts (and pays every package
// initialiser berth links, compose-go's JSON schema compile first), hand
// a command the front can serve to it. The front answers berth ps,
// and an up -d with nothing to do, from the load cache when the cache
// holds the project; on a miss, an up with work to do, or any
// flag it does not read, it execs berth back with BERTH_NO_FRONT set, and
// this constructor then removes that variable (so Go, and the load
// cache's key, see the environment the user set) and lets berth run. See
// cmd/internal/fastpath/front.go and docs/performance.md.
//
// The front (cmd/berth-front) is the one this binary carries, installed by
// berth beside the lean helper as $BERTH_RUN/helper/<sum>/front (helper.go);
// when it is not there (yet), is not the file install wrote (its stamp,
// below), or cannot be run, berth goes on as if there were no front, and
// installs it again.
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-helper.h" // BERTH_HELPER_DIR, made by make build

extern char **environ;

// global_value says whether a, one of berth's flags before the verb,
// takes the next argument as its value.
static int global_value(const char *a)
{
	static const char *const flags[] = {"-f", "--file", "-p", "--project-name", "--project-directory",
					    "--env-file", "--profile", "--progress", "--ansi", "--parallel", NULL};
	for (int i = 0; flags[i] != NULL; i++)
		if (strcmp(a, flags[i]) == 0)
			return 1;
	return 0;
}

static int has_prefix(const char *a, const char *p) { return strncmp(a, p, strlen(p)) == 0; }

// front_serves says whether argv is a shape the front may answer: the
// verb ps, or up with -d, with the project's files rather than -p alone
// (berth answers that from the state, faster than a hand-over). The
// front reads the command line exactly (fastpath.Parse); this only keeps
// every other command from paying a hand-over.
static int front_serves(int argc, char **argv)
{
	int named = 0, files = 0, i;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-p") == 0 || has_prefix(a, "--project-name") || (a[1] == 'p' && a[2] != 0))
			named = 1;
		if (strcmp(a, "-f") == 0 || has_prefix(a, "--file") || (a[1] == 'f' && a[2] != 0))
			files = 1;
		if (global_value(a))
			i++;
	}
	if (i >= argc || (named && !files))
		return 0;
	if (strcmp(argv[i], "ps") == 0)
		return 1;
	if (strcmp(argv[i], "up") != 0)
		return 0;
	for (i++; i < argc; i++)
		if (strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--detach") == 0)
			return 1;
	return 0;
}

// installed says whether the file at path is the one berth's install wrote:
// its device, inode, size and change time are those install recorded in
// stamp_path, in the same format (helper.go, stamp). A front written over in
// place or replaced, even runnable, is not executed: berth runs the
// command, and writes the front again.
static int installed(const char *path, const char *stamp_path)
{
	struct stat st;
	char want[128], got[128];
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	int n = snprintf(want, sizeof(want), "%llu %llu %lld %lld.%09ld\n", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino, (long long)st.st_size, (long long)st.st_ctim.tv_sec,
			 (long)st.st_ctim.tv_nsec);
	if (n <= 0 || n >= (int)sizeof(want))
		return 0;
	FILE *f = fopen(stamp_path, "re");
	if (f == NULL)
		return 0;
	size_t m = fread(got, 1, sizeof(got), f);
	fclose(f);
	return m == (size_t)n && memcmp(got, want, m) == 0;
}

__attribute__((constructor)) static void berth_front(int argc, char **argv)
{
	if (getenv("BERTH_NO_FRONT") != NULL) {
		unsetenv("BERTH_NO_FRONT"); // in place: Go reads the same array
		return;
	}
	if (argc < 2 || !front_serves(argc, argv) || geteuid() != 0)
		return;
	const char *run = getenv("BERTH_RUN");
	if (run == NULL || run[0] == 0)
		run = "/run/berth";
	const char *root = getenv("BERTH_ROOT");
	// berth makes relative state roots absolute in its environment
	// (main.go), which keys the load cache: the front would always miss.
	if (run[0] != '/' || (root != NULL && root[0] != 0 && root[0] != '/'))
		return;
	char front[PATH_MAX], stamp[PATH_MAX], exe[PATH_MAX];
	if (snprintf(front, sizeof(front), "%s/helper/%s/front", run, BERTH_HELPER_DIR) >= (int)sizeof(front) ||
	    snprintf(stamp, sizeof(stamp), "%s/helper/%s/.front.ok", run, BERTH_HELPER_DIR) >= (int)sizeof(stamp) ||
	    !installed(front, stamp))
		return;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || n >= (ssize_t)sizeof(exe) - 1)
		return;
	exe[n] = 0;
	if (n > 10 && strcmp(exe + n - 10, " (deleted)") == 0)
		return;
	char **args = malloc((argc + 4) * sizeof(char *));
	if (args == NULL)
		return;
	args[0] = "berth";
	args[1] = "front";
	args[2] = exe;
	memcpy(args + 3, argv, argc * sizeof(char *));
	args[argc + 3] = NULL;
	execve(front, args, environ);
	free(args); // not installed, or not runnable: berth runs the command
}
