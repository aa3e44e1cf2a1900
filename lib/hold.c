/*
 * hold.c - the record of a stream held for a schema change (see hold.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hold.h"
#include "json.h"
#include "outcome.h"
#include "spool.h"
#include "strbuf.h"

bool hold_path(const char *spool, const char *source, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/inbox/%s/held.json", spool, source);

	return n >= 0 && (size_t)n < len;
}

static bool hold_dir(const char *spool, const char *source, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/inbox/%s", spool, source);

	return n >= 0 && (size_t)n < len;
}

/* Parse a record of source; false when it is not one. */
static bool parse(const char *text, size_t len, const char *source, tp_hold *h)
{
	char err[128];
	json_doc *d = json_parse(text, len, err, sizeof err);
	int r = d ? json_root(d) : -1;
	const char *src = d ? json_str(d, r, "source") : NULL;
	const char *state = d ? json_str(d, r, "sqlstate") : NULL;
	const char *reason = d ? json_str(d, r, "reason") : NULL;
	bool ok = src && strcmp(src, source) == 0 && json_u64(d, r, "seq", &h->seq) &&
		  h->seq > 0 && (!state || strlen(state) < sizeof h->sqlstate);

	if (ok) {
		h->since = tp_time_parse(json_str(d, r, "since"));
		h->last_try = tp_time_parse(json_str(d, r, "last_try"));
		snprintf(h->sqlstate, sizeof h->sqlstate, "%s", state ? state : "");
		h->reason = reason ? xstrdup(reason) : NULL;
	}
	json_free(d);
	return ok;
}

int hold_read(const char *spool, const char *source, tp_hold *h)
{
	char path[PATH_MAX];
	strbuf sb = { 0 };

	memset(h, 0, sizeof *h);
	if (!hold_path(spool, source, path, sizeof path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (outcome_file_read(path, &sb) < 0) {
		strbuf_free(&sb);
		return errno == ENOENT ? 0 : -1;
	}
	bool ok = parse(sb.buf ? sb.buf : "", sb.len, source, h);
	strbuf_free(&sb);
	if (!ok) {
		memset(h, 0, sizeof *h);
		errno = EINVAL;
		return -1;
	}
	return 1;
}

int hold_write(const char *spool, const char *source, const tp_hold *h)
{
	char dir[PATH_MAX], path[PATH_MAX];
	strbuf sb = { 0 };

	if (!hold_dir(spool, source, dir, sizeof dir) ||
	    !hold_path(spool, source, path, sizeof path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strbuf_adds(&sb, "{\"source\": ");
	json_add_strz(&sb, source);
	strbuf_addf(&sb, ", \"seq\": %llu, ", (unsigned long long)h->seq);
	json_add_time_member(&sb, "since", h->since);
	strbuf_adds(&sb, ", ");
	json_add_time_member(&sb, "last_try", h->last_try);
	strbuf_adds(&sb, ", \"sqlstate\": ");
	json_add_strz(&sb, h->sqlstate);
	strbuf_adds(&sb, ", \"reason\": ");
	if (h->reason)
		json_add_strz(&sb, h->reason);
	else
		strbuf_adds(&sb, "null");
	strbuf_adds(&sb, "}\n");
	int rc = outcome_file_write(dir, path, &sb);
	strbuf_free(&sb);
	return rc;
}

int hold_remove(const char *spool, const char *source)
{
	char dir[PATH_MAX], path[PATH_MAX];

	if (!hold_dir(spool, source, dir, sizeof dir) ||
	    !hold_path(spool, source, path, sizeof path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (unlink(path) < 0)
		return errno == ENOENT ? 0 : -1;
	return spool_fsync_dir(dir);
}

void hold_clear(tp_hold *h)
{
	free(h->reason);
	memset(h, 0, sizeof *h);
}
