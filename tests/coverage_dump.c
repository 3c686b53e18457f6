/*
 * Linked into the --coverage build only (`make coverage`, through
 * EXTRA_OBJS and -Wl,--wrap): gcov writes a process's counts when it
 * exits normally, so the code a forked child runs before it execs COMMAND
 * or the teardown, or before _exit() (an exec failure, the lock waiter),
 * would always count as never run.  These wrappers write the counts first
 * and then do the real call.  They change nothing else.
 */
#include <unistd.h>

void __gcov_dump(void);

int __real_execveat(int fd, const char *path, char *const argv[],
		    char *const envp[], int flags);
int __real_execvp(const char *file, char *const argv[]);
int __real_execvpe(const char *file, char *const argv[], char *const envp[]);
void __real__exit(int status) __attribute__((noreturn));

int __wrap_execveat(int fd, const char *path, char *const argv[],
		    char *const envp[], int flags);
int __wrap_execvp(const char *file, char *const argv[]);
int __wrap_execvpe(const char *file, char *const argv[], char *const envp[]);
void __wrap__exit(int status) __attribute__((noreturn));

int
__wrap_execveat(int fd, const char *path, char *const argv[],
		char *const envp[], int flags)
{
	__gcov_dump();
	return __real_execveat(fd, path, argv, envp, flags);
}

int
__wrap_execvp(const char *file, char *const argv[])
{
	__gcov_dump();
	return __real_execvp(file, argv);
}

int
__wrap_execvpe(const char *file, char *const argv[], char *const envp[])
{
	__gcov_dump();
	return __real_execvpe(file, argv, envp);
}

void
__wrap__exit(int status)
{
	__gcov_dump();
	__real__exit(status);
}
