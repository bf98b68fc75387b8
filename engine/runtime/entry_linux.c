// The container entry: the last step between libcontainer's init and the
// container's command, run before the Go runtime starts so it costs a
// fraction of a millisecond. libcontainer's init execs the berth binary
// again through the sealed /proc/self/exe as
//
//   /proc/self/exe container-entry SECCOMP_FD CAPS INIT -- COMMAND...
//
// and this constructor installs the seccomp program Berth compiled once
// (read from SECCOMP_FD, a sealed memfd, or -1 for none), sets the
// capability sets to CAPS ("B:E:P:I:A" in hex, or "-" to leave them), and
// execs COMMAND; with INIT 1 it returns instead and Go runs the minimal
// init (containerinit_linux.go). See seccomp_linux.go for why.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "entry_linux.h"

extern char **environ;

static void entry_exit(const char *what, int err)
{
	dprintf(2, "berth: container entry: %s: %s\n", what, strerror(err));
	_exit(127);
}

// berth_entry_fail reports a failed step and does not return: the entry
// prints it and exits, the C init (cinit_linux.c) sends it to the parent.
void (*berth_entry_fail)(const char *what, int err) = entry_exit;
#define entry_fail(what, err) berth_entry_fail(what, err)

// read_program reads "FLAGS COUNT" (two native uint32) and COUNT filter
// instructions from fd, then closes it: the command must not inherit it.
struct sock_filter *berth_read_program(int fd, uint32_t *flags, uint16_t *len)
{
	uint32_t head[2];
	if (pread(fd, head, sizeof(head), 0) != sizeof(head))
		entry_fail("read seccomp program", errno ? errno : EIO);
	if (head[1] == 0 || head[1] > BPF_MAXINSNS)
		entry_fail("seccomp program size", EINVAL);
	size_t size = head[1] * sizeof(struct sock_filter);
	struct sock_filter *prog = malloc(size);
	if (prog == NULL)
		entry_fail("seccomp program", ENOMEM);
	if (pread(fd, prog, size, sizeof(head)) != (ssize_t)size)
		entry_fail("read seccomp program", errno ? errno : EIO);
	close(fd);
	*flags = head[0];
	*len = head[1];
	return prog;
}

void berth_install_filter(struct sock_filter *filter, uint16_t len, uint32_t flags)
{
	struct sock_fprog prog = {.len = len, .filter = filter};
	long r;
	if (flags == 0)
		r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
	else
		r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (r < 0)
		entry_fail("install seccomp program", errno);
}

// berth_drop_bounding drops from the bounding set what spec's bounding mask
// lacks (it needs CAP_SETPCAP: the C init calls it before it changes user).
void berth_drop_bounding(const char *spec)
{
	unsigned long long b;
	if (sscanf(spec, "%llx:", &b) != 1)
		entry_fail("capabilities", EINVAL);
	for (int c = 0; c < 64; c++) {
		int in = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
		if (in < 0)
			break; // past the kernel's last capability
		if (in == 1 && !(b & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			entry_fail("drop from the bounding set", errno);
	}
}

// set_caps makes the thread's capability sets the container's: it drops
// from the bounding set and lowers what libcontainer granted beyond them
// only so this entry could install the filter (see seccomp_linux.go).
void berth_set_caps(const char *spec)
{
	unsigned long long b, e, p, i, a;
	if (sscanf(spec, "%llx:%llx:%llx:%llx:%llx", &b, &e, &p, &i, &a) != 5)
		entry_fail("capabilities", EINVAL);
	berth_drop_bounding(spec);
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct cur[2], want[2];
	if (syscall(SYS_capget, &hdr, cur) < 0)
		entry_fail("capget", errno);
	unsigned long long permitted = cur[0].permitted | (unsigned long long)cur[1].permitted << 32;
	e &= permitted;
	p &= permitted;
	for (int k = 0; k < 2; k++) {
		want[k].effective = (uint32_t)(e >> (32 * k));
		want[k].permitted = (uint32_t)(p >> (32 * k));
		want[k].inheritable = (uint32_t)(i >> (32 * k));
	}
	if (syscall(SYS_capset, &hdr, want) < 0)
		entry_fail("capset", errno);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		entry_fail("clear ambient capabilities", errno);
	for (int c = 0; c < 64; c++)
		if ((a & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
			entry_fail("raise an ambient capability", errno);
}

__attribute__((constructor)) static void berth_container_entry(int argc, char **argv)
{
	if (argc < 7 || strcmp(argv[1], "container-entry") != 0 || strcmp(argv[5], "--") != 0)
		return;
	int fd = atoi(argv[2]);
	const char *caps = argv[3];
	int init = strcmp(argv[4], "1") == 0;
	struct sock_filter *filter = NULL;
	uint32_t flags = 0;
	uint16_t len = 0;
	if (fd >= 0)
		filter = berth_read_program(fd, &flags, &len);
	// With no_new_privs the filter goes last, right before exec, as
	// libcontainer does; without it, installing needs CAP_SYS_ADMIN, so it
	// goes first, before the capabilities are dropped.
	int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
	if (filter && !nnp)
		berth_install_filter(filter, len, flags);
	if (strcmp(caps, "-") != 0)
		berth_set_caps(caps);
	if (filter && nnp)
		berth_install_filter(filter, len, flags);
	free(filter);
	if (init)
		return; // the Go runtime starts and runs the minimal init
	execvpe(argv[6], &argv[6], environ);
	int err = errno;
	dprintf(2, "berth: exec %s: %s\n", argv[6], strerror(err));
	_exit(err == ENOENT ? 127 : 126);
}
