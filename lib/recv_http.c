/*
 * recv_http.c - the request logic behind every HTTP way into tp-recv (see
 * recv_http.h): routing, the header credential, limits, the body into a
 * temp file, and the answer from recv_store_file().
 *
 * Everything that can be refused without the body is refused in
 * http_begin, before a byte of it is read or stored: a front end that
 * answers then lets the body go unread (MHD skips it and closes).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "httpauth.h"
#include "json.h"
#include "log.h"
#include "recv_http.h"
#include "spool.h"
#include "strbuf.h"
#include "tp.h"

volatile int recv_http_stop;

struct http_upload {
	recv_ctx *r;
	int fd;
	char tmp[PATH_MAX];         /* "" once stored or removed */
	char source[64];
	char ext[16];
	uint64_t seq;
	uint64_t got, max;
	char peer[64];
};

const char *http_reason(unsigned status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

void http_reply_free(http_reply *rep)
{
	strbuf_free(&rep->body);
}

/* A text/plain answer: one line. Logs refusals. Returns 1. */
static int answer(http_reply *rep, const http_req *q, unsigned status,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int answer(http_reply *rep, const http_req *q, unsigned status,
		  const char *fmt, ...)
{
	va_list ap;

	rep->status = status;
	rep->content_type = "text/plain; charset=utf-8";
	strbuf_reset(&rep->body);
	va_start(ap, fmt);
	char line[1024];
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	strbuf_addf(&rep->body, "%s\n", line);
	if (status == 404 || status == 405)
		log_info("%s %s from %s: %u %s", q->method, q->path, q->peer,
			 status, line);
	else if (status >= 400)
		log_error("refused %s %s from %s: %u %s", q->method, q->path,
			  q->peer, status, line);
	return 1;
}

/* ---- routes ---- */

enum route { R_NONE, R_STATUS, R_BATCH, R_BADEXT };

/* "/v1/batches/<source>/<16 digits><ext>", pieces copied out. */
static enum route parse_batch(const char *p, char source[64], uint64_t *seq,
			      char ext[16])
{
	const char *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : 0;
	uint64_t v = 0;

	if (n == 0 || n > 63)
		return R_NONE;
	memcpy(source, p, n);
	source[n] = '\0';
	if (!config_name_valid(source))
		return R_NONE;
	const char *name = slash + 1;
	for (int i = 0; i < SPOOL_SEQ_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return R_NONE;
		v = v * 10 + (uint64_t)(name[i] - '0');
	}
	const char *e = name + SPOOL_SEQ_DIGITS;
	if (*e != '.' || v == 0)
		return R_NONE;
	if (strcmp(e, ".tar.zst") && strcmp(e, ".tar.gz") && strcmp(e, ".tar"))
		return R_BADEXT;
	snprintf(ext, 16, "%s", e);
	*seq = v;
	return R_BATCH;
}

static enum route parse_route(const char *path, char source[64],
			      uint64_t *seq, char ext[16])
{
	size_t n = strlen(HTTPAUTH_ROUTE_BATCHES);

	if (strcmp(path, HTTPAUTH_ROUTE_STATUS) == 0)
		return R_STATUS;
	if (strncmp(path, HTTPAUTH_ROUTE_BATCHES, n) == 0)
		return parse_batch(path + n, source, seq, ext);
	return R_NONE;
}

/* ---- the credential ---- */

/*
 * Check the request's credential. batch_source is the source the path
 * names, or NULL (status). *who gets the authenticated source, or NULL
 * for an anonymous request. 0, or 1 with the reply filled.
 */
static int check_auth(recv_ctx *r, const http_req *q, const char *batch_source,
		      const char **who, http_reply *rep)
{
	const char *name = q->source ? q->source : batch_source;
	const char *token = NULL;
	char why[512];

	*who = NULL;
	if (!name)
		return 0;       /* anonymous status request */
	if (!config_name_valid(name))
		return answer(rep, q, 401, "%s is not a source name",
			      HTTPAUTH_HDR_SOURCE);
	int rc = recv_source_token(r, name, &token, why, sizeof why);
	if (rc == TP_EDATA)
		return answer(rep, q, 401, "%s", why);
	if (rc != TP_OK)
		return answer(rep, q, 500, "this receiver cannot read the "
			      "token of source %s", name);
	if (token && httpauth_check(token, q->method, q->path, name, q->date,
				    q->auth, time(NULL), why, sizeof why) < 0)
		return answer(rep, q, 401, "%s", why);
	if (batch_source && strcmp(name, batch_source) != 0)
		return answer(rep, q, 403, "source %s may not send batches of "
			      "source %s", name, batch_source);
	*who = name;
	return 0;
}

/* ---- GET /v1/status ---- */

/* Highest batch number in dir (0 when none). */
static uint64_t highest(const char *dir)
{
	spool_entry *list = NULL;
	size_t n = 0;
	uint64_t v = 0;

	if (spool_list(dir, false, &list, &n) == 0 && n > 0)
		v = list[n - 1].seq;
	spool_list_free(list, n);
	return v;
}

/*
 * Per source: the highest batch held (inbox or applied/) and the highest
 * applied. A source with a token shows only to a request signed by it.
 */
static int status_reply(recv_ctx *r, const char *who, http_reply *rep)
{
	const tp_config *cfg = recv_config(r);
	char dir[PATH_MAX], applied[PATH_MAX];
	const char *sep = "";

	strbuf_reset(&rep->body);
	strbuf_adds(&rep->body, "{\"node\":");
	json_add_strz(&rep->body, cfg->node_name);
	strbuf_adds(&rep->body, ",\"sources\":[");
	for (size_t i = 0; i < cfg->nsources; i++) {
		const tp_source *s = &cfg->sources[i];
		if (s->token_file && !(who && strcmp(who, s->name) == 0))
			continue;
		if (snprintf(dir, sizeof dir, "%s/inbox/%s", cfg->spool, s->name)
		    >= (int)sizeof dir ||
		    snprintf(applied, sizeof applied, "%s/inbox/%s/applied",
			     cfg->spool, s->name) >= (int)sizeof applied)
			continue;       /* a spool path too long for any file */
		uint64_t a = highest(applied), h = highest(dir);
		strbuf_addf(&rep->body, "%s{\"name\":", sep);
		json_add_strz(&rep->body, s->name);
		strbuf_addf(&rep->body, ",\"received\":%" PRIu64 ",\"applied\":%"
			    PRIu64 "}", h > a ? h : a, a);
		sep = ",";
	}
	strbuf_adds(&rep->body, "]}\n");
	rep->status = 200;
	rep->content_type = "application/json";
	return 1;
}

/* ---- POST /v1/batches/... ---- */

/* The media type, parameters aside, must be ours (or plain octets). */
static bool batch_media_type(const char *ct)
{
	static const char *const ok[] = { HTTPAUTH_MEDIA_TYPE,
					  "application/octet-stream" };

	if (!ct)
		return false;
	size_t n = strcspn(ct, "; \t");
	for (size_t i = 0; i < 2; i++)
		if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0)
			return true;
	return false;
}

static int begin_upload(recv_ctx *r, const http_req *q, const char *source,
			uint64_t seq, const char *ext, http_upload **up,
			http_reply *rep)
{
	uint64_t max = (uint64_t)recv_config(r)->max_batch_bytes;

	if (!batch_media_type(q->content_type))
		return answer(rep, q, 415, "Content-Type must be %s",
			      HTTPAUTH_MEDIA_TYPE);
	if (q->length >= 0 && (uint64_t)q->length > max)
		return answer(rep, q, 413, "%lld bytes, larger than "
			      "max_batch_bytes (%" PRIu64 ")", q->length, max);
	http_upload *u = xcalloc(1, sizeof *u);
	u->fd = recv_tmpfile(r, u->tmp);
	if (u->fd < 0) {
		free(u);
		return answer(rep, q, 503, "cannot store batches now");
	}
	u->r = r;
	u->seq = seq;
	u->max = max;
	snprintf(u->source, sizeof u->source, "%s", source);
	snprintf(u->ext, sizeof u->ext, "%s", ext);
	snprintf(u->peer, sizeof u->peer, "%s", q->peer);
	*up = u;
	return 0;
}

int http_begin(recv_ctx *r, const http_req *q, http_upload **up,
	       http_reply *rep)
{
	char source[64], ext[16];
	uint64_t seq = 0;
	const char *who = NULL;

	*up = NULL;
	switch (parse_route(q->path, source, &seq, ext)) {
	case R_STATUS:
		if (strcmp(q->method, "GET") != 0) {
			rep->allow = "GET";
			return answer(rep, q, 405, "use GET");
		}
		if (check_auth(r, q, NULL, &who, rep))
			return 1;
		return status_reply(r, who, rep);
	case R_BADEXT:
		return answer(rep, q, 415, "not a batch file extension "
			      "(want .tar.zst, .tar.gz or .tar)");
	case R_BATCH:
		if (strcmp(q->method, "POST") != 0) {
			rep->allow = "POST";
			return answer(rep, q, 405, "use POST");
		}
		if (check_auth(r, q, source, &who, rep))
			return 1;
		return begin_upload(r, q, source, seq, ext, up, rep);
	default:
		return answer(rep, q, 404, "no such route (want POST %s... or "
			      "GET %s)", HTTPAUTH_ROUTE_BATCHES,
			      HTTPAUTH_ROUTE_STATUS);
	}
}

/* For answers about an upload: the request as the log names it. */
static http_req upload_req(const http_upload *u, char *path, size_t len)
{
	snprintf(path, len, "%s%s/%0*" PRIu64 "%s", HTTPAUTH_ROUTE_BATCHES,
		 u->source, SPOOL_SEQ_DIGITS, u->seq, u->ext);
	return (http_req){ .method = "POST", .path = path, .peer = u->peer };
}

int http_body(http_upload *u, const void *data, size_t n, http_reply *rep)
{
	char path[128];
	const char *p = data;

	u->got += n;
	if (u->got > u->max) {
		http_req q = upload_req(u, path, sizeof path);
		answer(rep, &q, 413, "larger than max_batch_bytes (%" PRIu64 ")",
		       u->max);
		return -1;
	}
	while (n > 0) {
		ssize_t w = write(u->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			log_error("could not write %s: %m", u->tmp);
			http_req q = upload_req(u, path, sizeof path);
			answer(rep, &q, 503, "cannot store batches now");
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void http_end(http_upload *u, http_reply *rep)
{
	char why[1024] = "", path[128];
	enum recv_stored how;
	http_req q = upload_req(u, path, sizeof path);

	/* recv_store_file fsyncs through its own descriptor. */
	if (close(u->fd) < 0) {
		u->fd = -1;
		log_error("could not write %s: %m", u->tmp);
		answer(rep, &q, 503, "cannot store batches now");
		return;
	}
	u->fd = -1;
	int rc = recv_store_file(u->r, u->tmp, u->source, u->seq, u->ext, &how,
				 why, sizeof why);
	if (rc == TP_OK && how == RECV_NEW) {
		u->tmp[0] = '\0';       /* renamed into the inbox */
		log_info("source %s: received batch %" PRIu64 " over HTTP from %s",
			 u->source, u->seq, u->peer);
		answer(rep, &q, 201, "stored");
	} else if (rc == TP_OK) {
		log_debug("source %s: batch %" PRIu64 " from %s: duplicate of a "
			  "batch already received", u->source, u->seq, u->peer);
		answer(rep, &q, 200, "already held");
	} else if (rc == TP_EDATA) {
		answer(rep, &q, strncmp(why, "conflicts", 9) == 0 ? 409 : 422,
		       "%s", why);
	} else {
		log_error("%s: %s", u->tmp, why);
		answer(rep, &q, rc == TP_ECONFIG ? 500 : 503, "cannot store "
		       "batches now");
	}
}

void http_upload_free(http_upload *u)
{
	if (!u)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (u->tmp[0])
		unlink(u->tmp);
	free(u);
}
