#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>

#include "parse.h"
#include "run.h"

unsigned
run_event(enum run_reason reason, int exit_status)
{
	switch (reason) {
	case REASON_TIMEOUT:
		return EVENT_TIMEOUT;
	case REASON_CANCEL:
	case REASON_PARENT_DEATH:
		return EVENT_CANCEL;
	case REASON_EXIT:
		return exit_status == 0 ? EVENT_SUCCESS : EVENT_FAILURE;
	case REASON_NONE:
	case REASON_EXEC_FAILED:
	case REASON_ERROR:
		break;
	}
	return EVENT_FAILURE;
}

const char *
run_reason_name(enum run_reason reason)
{
	switch (reason) {
	case REASON_TIMEOUT:
		return "timeout";
	case REASON_CANCEL:
		return "cancel";
	case REASON_PARENT_DEATH:
		return "parent-death";
	case REASON_NONE:
	case REASON_EXIT:
	case REASON_EXEC_FAILED:
	case REASON_ERROR:
		break;
	}
	return "exit";
}

const char *
run_command_status(int cmd_state, int wstatus, char *buf, size_t len)
{
	char name[32];

	if (cmd_state == CMD_NOT_STARTED) {
		snprintf(buf, len, "not started");
	} else if (cmd_state == CMD_RUNNING) {
		/* The supervisor died; COMMAND's death signal is SIGKILL. */
		snprintf(buf, len, "killed by SIGKILL");
	} else if (WIFSIGNALED(wstatus)) {
		snprintf(buf, len, "killed by %s",
			 sig_name(WTERMSIG(wstatus), name, sizeof(name)));
	} else {
		snprintf(buf, len, "exited %d", WEXITSTATUS(wstatus));
	}
	return buf;
}
