/*
 * outcome.c - the record of a command's last run (see outcome.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "outcome.h"
#include "spool.h"
#include "strbuf.h"

/* Records are small; anything bigger is not one of ours. */
#define OUTCOME_MAX 65536

static time_t started;
static char summary[512];

/*
 * The start of the run is taken before main, so that hooking a command up
 * is a single call at the end of its main.
 */
__attribute__((constructor)) static void outcome_start(void)
{
	started = time(NULL);
}

void outcome_note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(summary, sizeof summary, fmt, ap);
	va_end(ap);
}

void tp_time_iso(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0 || !gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%s", "");
}

time_t tp_time_parse(const char *s)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof tm);
	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return 0;
	if (*end == '.')        /* batch headers carry microseconds */
		end += 1 + strspn(end + 1, "0123456789");
	return strcmp(end, "Z") == 0 ? timegm(&tm) : 0;
}

void json_add_time_member(strbuf *sb, const char *key, time_t t)
{
	char iso[32];

	strbuf_addf(sb, "\"%s\": ", key);
	tp_time_iso(t, iso, sizeof iso);
	if (*iso)
		json_add_strz(sb, iso);
	else
		strbuf_adds(sb, "null");
}

static void add_time(strbuf *sb, const char *key, time_t t)
{
	strbuf_adds(sb, ", ");
	json_add_time_member(sb, key, t);
}

static void add_str(strbuf *sb, const char *key, const char *s)
{
	strbuf_addf(sb, ", \"%s\": ", key);
	if (s && *s)
		json_add_strz(sb, s);
	else
		strbuf_adds(sb, "null");
}

static void format_record(strbuf *sb, const outcome *o)
{
	strbuf_adds(sb, "{\"command\": ");
	json_add_strz(sb, o->command);
	add_time(sb, "start", o->start);
	add_time(sb, "end", o->end);
	strbuf_addf(sb, ", \"exit\": %d", o->exit);
	add_str(sb, "summary", o->summary);
	add_str(sb, "error", o->error);
	add_time(sb, "error_since", o->error_since);
	add_time(sb, "last_ok", o->last_ok);
	strbuf_adds(sb, "}\n");
}

int outcome_file_write(const char *dir, const char *path, const strbuf *sb)
{
	char tmp[PATH_MAX];
	int fd;

	if (spool_mkdirs(dir) < 0 || (fd = spool_tmpfile(dir, tmp)) < 0)
		return -1;
	for (size_t off = 0; off < sb->len;) {
		ssize_t n = write(fd, sb->buf + off, sb->len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;
			close(fd);
			unlink(tmp);
			errno = saved;
			return -1;
		}
		off += (size_t)n;
	}
	return spool_commit(fd, tmp, path);
}

void outcome_record(const tp_config *cfg, int rc)
{
	char dir[PATH_MAX], path[PATH_MAX];
	outcome prev = { 0 };
	strbuf sb = { 0 };
	const char *cmd = log_progname();

	if (!cfg)
		return;
	snprintf(dir, sizeof dir, "%s/state", cfg->spool);
	if (snprintf(path, sizeof path, "%s/%s.json", dir, cmd) >= (int)sizeof path)
		return;
	bool had_prev = outcome_read(path, &prev) == 0;
	outcome now = {
		.command = (char *)cmd, .start = started, .end = time(NULL), .exit = rc,
		.summary = summary,
		.error = rc == 0 ? NULL : *log_last_error() ? (char *)log_last_error() : NULL,
		.last_ok = had_prev ? prev.last_ok : 0,
	};
	char fallback[32];
	if (rc != 0 && !now.error) {
		snprintf(fallback, sizeof fallback, "exit %d", rc);
		now.error = fallback;
	}
	if (rc == 0)
		now.last_ok = now.end;
	else    /* a streak of failures keeps the start of its first run */
		now.error_since = had_prev && prev.exit != 0 && prev.error_since ? prev.error_since : started;
	format_record(&sb, &now);
	if (outcome_file_write(dir, path, &sb) < 0)
		log_warn("cannot record the outcome in %s: %m", path);
	strbuf_free(&sb);
	outcome_clear(&prev);
}

int outcome_file_read(const char *path, strbuf *sb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char buf[4096];
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || sb->len + (size_t)n > OUTCOME_MAX) {
			int saved = n < 0 ? errno : EFBIG;
			close(fd);
			errno = saved;
			return -1;
		}
		strbuf_add(sb, buf, (size_t)n);
	}
	close(fd);
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int outcome_read(const char *path, outcome *o)
{
	strbuf sb = { 0 };
	char err[128];
	uint64_t code;

	memset(o, 0, sizeof *o);
	if (outcome_file_read(path, &sb) < 0) {
		strbuf_free(&sb);
		return -1;
	}
	json_doc *d = json_parse(sb.buf ? sb.buf : "", sb.len, err, sizeof err);
	strbuf_free(&sb);
	int r = d ? json_root(d) : -1;
	const char *cmd = d ? json_str(d, r, "command") : NULL;
	if (!cmd || !json_u64(d, r, "exit", &code) || code > 255) {
		json_free(d);
		errno = EINVAL;
		return -1;
	}
	o->command = xstrdup(cmd);
	o->exit = (int)code;
	o->start = tp_time_parse(json_str(d, r, "start"));
	o->end = tp_time_parse(json_str(d, r, "end"));
	o->error_since = tp_time_parse(json_str(d, r, "error_since"));
	o->last_ok = tp_time_parse(json_str(d, r, "last_ok"));
	o->summary = dup_or_null(json_str(d, r, "summary"));
	o->error = dup_or_null(json_str(d, r, "error"));
	json_free(d);
	return 0;
}

void outcome_clear(outcome *o)
{
	free(o->command);
	free(o->summary);
	free(o->error);
	memset(o, 0, sizeof *o);
}
