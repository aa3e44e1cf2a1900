/*
 * log.c - one line per event on stderr: "tp-send: error: message".
 *
 * Each line goes out in a single write so that lines of concurrent
 * commands sharing a log (cron mail, journald) never interleave. Messages
 * are flattened to one line: libpq's are multi-line and end in '\n'.
 * errno is preserved so callers may log and then still look at it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logsys.h"

static char progname[64] = "teleport";
static int level = LOG_WARN;
/* The last error line, for the outcome record tp-status reads. */
static char last_error[512];
static int use_syslog;

const char *log_last_error(void)
{
	return last_error;
}

void log_syslog(void)
{
	if (!use_syslog)
		logsys_open(progname);
	use_syslog = 1;
}

void log_init(const char *name)
{
	const char *slash = strrchr(name, '/');
	snprintf(progname, sizeof progname, "%s", slash ? slash + 1 : name);
}

const char *log_progname(void)
{
	return progname;
}

void log_set_level(int l)
{
	level = l < LOG_ERROR ? LOG_ERROR : l > LOG_DEBUG ? LOG_DEBUG : l;
}

int log_get_level(void)
{
	return level;
}

/* Trailing newlines and spaces go; inner newlines become spaces. */
static void flatten(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static void vlog(int l, const char *tag, const char *fmt, va_list ap)
{
	char stack[1024], *line = stack;
	int saved = errno;

	if (l > level)
		return;
	/* Room is kept for the '\n' that ends the line. */
	size_t room = sizeof stack - 1;
	int pre = snprintf(stack, room, "%s: %s: ", progname, tag);
	va_list ap2;
	va_copy(ap2, ap);
	errno = saved;          /* for %m */
	int n = vsnprintf(stack + pre, room - (size_t)pre, fmt, ap);
	if (n < 0) {
		stack[pre] = '\0';
	} else if ((size_t)n >= room - (size_t)pre) {
		char *big = malloc((size_t)pre + (size_t)n + 2);
		if (big) {      /* else: a truncated line beats none */
			memcpy(big, stack, (size_t)pre);
			errno = saved;
			vsnprintf(big + pre, (size_t)n + 1, fmt, ap2);
			line = big;
		}
	}
	va_end(ap2);
	flatten(line + pre);
	if (l == LOG_ERROR && strcmp(tag, "error") == 0)
		snprintf(last_error, sizeof last_error, "%s", line + pre);
	if (use_syslog)
		logsys_send(l, line + strlen(progname) + 2);    /* "error: ..." */
	strcat(line, "\n");
	/* One write per line; a short write to stderr is not worth a retry loop. */
	ssize_t w = write(STDERR_FILENO, line, strlen(line));
	(void)w;
	if (line != stack)
		free(line);
	errno = saved;
}

#define LOG_FN(fn, l, tag) \
	void fn(const char *fmt, ...) \
	{ \
		va_list ap; \
		va_start(ap, fmt); \
		vlog(l, tag, fmt, ap); \
		va_end(ap); \
	}

LOG_FN(log_error, LOG_ERROR, "error")
LOG_FN(log_warn, LOG_WARN, "warning")
LOG_FN(log_info, LOG_INFO, "info")
LOG_FN(log_debug, LOG_DEBUG, "debug")
LOG_FN(log_hint, LOG_ERROR, "hint")
