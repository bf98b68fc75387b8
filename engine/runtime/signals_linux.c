// A container starts with no signal ignored, as under Docker. An ignored
// signal stays ignored across fork and exec, so without this a container
// would inherit whatever the command that spawned its shim ignored (nohup's
// SIGHUP, make's signal 32) and pass it on to every process it starts. The
// container's init ("berth init", which libcontainer execs and which then
// execs the container's command) resets them before anything else runs in
// it; the Go runtime and libcontainer ignore none of their own.
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

// The kernel's struct sigaction: glibc's sigaction() refuses the signals
// it reserves for itself (32 and 33), which can be inherited ignored too.
struct kernel_sigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

// berth_reset_ignored_signals is also called by the C init
// (cinit_linux.c), which runs before this constructor and never returns.
void berth_reset_ignored_signals(void)
{
	for (int sig = 1; sig <= 64; sig++) {
		struct kernel_sigaction old, dfl;
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, sizeof(uint64_t)) != 0 || old.handler != (void *)SIG_IGN)
			continue;
		memset(&dfl, 0, sizeof(dfl));
		dfl.handler = (void *)SIG_DFL;
		syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(uint64_t));
	}
}

__attribute__((constructor)) static void berth_reset_ignored_signals_in_init(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "init") == 0)
		berth_reset_ignored_signals();
}
