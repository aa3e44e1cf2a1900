/*
 * logsys.c - send log lines to syslog(3) as well (see logsys.h).
 */
#include <stdio.h>
#include <syslog.h>

#include "logsys.h"

static char ident[64];

void logsys_open(const char *name)
{
	snprintf(ident, sizeof ident, "%s", name);
	openlog(ident, LOG_PID, LOG_DAEMON);
}

void logsys_send(int level, const char *msg)
{
	/* log.h: 0 error, 1 warning, 2 info, 3 debug */
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	syslog(prio[level < 0 ? 0 : level > 3 ? 3 : level], "%s", msg);
}
