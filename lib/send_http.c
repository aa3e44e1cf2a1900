/*
 * send_http.c - the "http://" and "https://" transport, on libcurl.
 *
 * Each batch is one POST of the outbox file, streamed from disk, to
 * <endpoint>/v1/batches/<source>/<seq16><ext> with the header credential
 * of httpauth.h. The receiver answers 2xx only once the batch is durable
 * (201 stored, 200 already held), so a 2xx is "sent".
 *
 * Transient failures (no connection, timeouts, 408, 429, 5xx) are retried
 * within the run with a doubling delay; the queue stops after the last
 * try, and cron's next run goes on. A refusal that no retry can change
 * is reported at once: 65 for a bad batch, 78 for a credential or an
 * endpoint that is wrong.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "httpauth.h"
#include "log.h"
#include "send.h"
#include "spool.h"
#include "strbuf.h"
#include "tp.h"

#define RETRY_DELAY_CAP 60      /* seconds: the longest single wait */
#define REPLY_KEEP 512          /* bytes of a reply body kept for the log */

typedef struct http_priv {
	const tp_target *t;
	CURL *curl;
	char *base;             /* endpoint without its trailing '/' */
	char *token;            /* NULL: the target has no token_file */
	char err[CURL_ERROR_SIZE];
	strbuf reply;           /* start of the reply body */
	int fd;                 /* the batch being sent */
} http_priv;

/* What one attempt came to. */
enum outcome { O_SENT, O_RETRY, O_FAIL };

static int curl_users;          /* transports alive: global init refcount */

/* ---- libcurl callbacks ---- */

static size_t on_read(char *buf, size_t size, size_t n, void *user)
{
	http_priv *p = user;
	ssize_t r;

	do
		r = read(p->fd, buf, size * n);
	while (r < 0 && errno == EINTR);
	return r < 0 ? CURL_READFUNC_ABORT : (size_t)r;
}

/* libcurl rewinds when it re-sends on a fresh connection. */
static int on_seek(void *user, curl_off_t off, int origin)
{
	http_priv *p = user;

	return lseek(p->fd, (off_t)off, origin) < 0 ? CURL_SEEKFUNC_FAIL
						    : CURL_SEEKFUNC_OK;
}

static size_t on_write(char *buf, size_t size, size_t n, void *user)
{
	http_priv *p = user;
	size_t len = size * n;

	if (p->reply.len < REPLY_KEEP)
		strbuf_add(&p->reply, buf, len < REPLY_KEEP ? len : REPLY_KEEP);
	return len;
}

/* The first line of the reply body, printable ASCII only, for the log. */
static const char *reply_line(http_priv *p)
{
	char *s = p->reply.buf ? p->reply.buf : (char *)"";
	size_t i;

	for (i = 0; s[i] && s[i] != '\n' && s[i] != '\r' && i < 200; i++)
		if (s[i] < ' ' || s[i] > '~')
			s[i] = '?';
	s[i] = '\0';
	return *s ? s : "(no reason given)";
}

/* ---- one attempt ---- */

static struct curl_slist *add_header(struct curl_slist *h, const char *name,
				     const char *value)
{
	char line[256];

	snprintf(line, sizeof line, "%s: %s", name, value);
	struct curl_slist *n = curl_slist_append(h, line);
	if (!n) {
		curl_slist_free_all(h);
		return NULL;
	}
	return n;
}

/* Content type, the credential, and no "Expect: 100-continue" stall. */
static struct curl_slist *batch_headers(http_priv *p, const send_batch *b,
					const char *route)
{
	struct curl_slist *h = curl_slist_append(NULL, "Expect:");
	char date[32], hex[65];

	h = h ? add_header(h, "Content-Type", HTTPAUTH_MEDIA_TYPE) : NULL;
	h = h ? add_header(h, HTTPAUTH_HDR_SOURCE, b->source) : NULL;
	if (!h || !p->token)
		return h;
	snprintf(date, sizeof date, "%lld", (long long)time(NULL));
	if (httpauth_sign(p->token, "POST", route, b->source, date, hex) < 0) {
		curl_slist_free_all(h);
		return NULL;
	}
	h = add_header(h, HTTPAUTH_HDR_DATE, date);
	return h ? add_header(h, HTTPAUTH_HDR_AUTH, hex) : NULL;
}

/* POST the batch once: the curl code, and the status when there is one. */
static CURLcode post(http_priv *p, const send_batch *b, const char *url,
		     const char *route, long *status)
{
	struct stat st;
	CURLcode cc = CURLE_READ_ERROR;

	*status = 0;
	p->fd = open(b->path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0 || fstat(p->fd, &st) < 0) {
		snprintf(p->err, sizeof p->err, "could not read %s: %s",
			 b->path, strerror(errno));
		goto out;
	}
	struct curl_slist *h = batch_headers(p, b, route);
	if (!h) {
		snprintf(p->err, sizeof p->err, "could not build the request");
		goto out;
	}
	strbuf_reset(&p->reply);
	p->err[0] = '\0';
	curl_easy_setopt(p->curl, CURLOPT_URL, url);
	curl_easy_setopt(p->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)st.st_size);
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, h);
	cc = curl_easy_perform(p->curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, status);
	curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
out:
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	return cc;
}

/* ---- what an answer means ---- */

static enum outcome classify_status(http_priv *p, const send_batch *b,
				    const char *url, long status, int *rc)
{
	if (status >= 200 && status < 300) {
		if (status == 200)
			log_debug("target %s: batch %s was already held by %s",
				  b->target, b->name, url);
		return O_SENT;
	}
	if (status == 408 || status == 429 || status == 500 ||
	    (status >= 502 && status <= 504)) {
		*rc = TP_EUNAVAIL;
		return O_RETRY;
	}
	if (status == 400 || status == 409 || status == 413 ||
	    status == 415 || status == 422)
		*rc = TP_EDATA;
	else if (status == 401 || status == 403)
		*rc = TP_ECONFIG;
	else if (status < 200 || (status >= 300 && status < 500))
		*rc = TP_ECONFIG;    /* 3xx, 404, 405: not a teleport receiver */
	else
		*rc = TP_EUNAVAIL;
	log_error("target %s: batch %s refused by %s: %ld %s", b->target,
		  b->name, url, status, reply_line(p));
	if (status == 401)
		log_hint("the token_file of [target %s] must hold the token of "
			 "[source %s] on the receiver", b->target, b->source);
	else if (*rc == TP_ECONFIG && status != 403)
		log_hint("is endpoint = %s a tp-recv?", p->t->endpoint);
	return O_FAIL;
}

static enum outcome classify_curl(http_priv *p, const send_batch *b,
				  const char *url, CURLcode cc, int *rc)
{
	const char *msg = p->err[0] ? p->err : curl_easy_strerror(cc);

	switch (cc) {
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		*rc = TP_EUNAVAIL;
		return O_RETRY;
	case CURLE_READ_ERROR:
	case CURLE_ABORTED_BY_CALLBACK:
		*rc = TP_EFAIL;
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CIPHER:
		*rc = TP_ECONFIG;
		break;
	default:        /* certificate not trusted, not HTTP, ... */
		*rc = TP_EUNAVAIL;
		break;
	}
	log_error("target %s: batch %s: %s: %s", b->target, b->name, url, msg);
	if (cc == CURLE_PEER_FAILED_VERIFICATION)
		log_hint("ca_file of [target %s] must hold the CA that signed "
			 "the receiver's certificate", b->target);
	return O_FAIL;
}

/* ---- retries ---- */

/* Sleep s seconds in short naps, so SIGTERM is not kept waiting. */
static void nap(long s)
{
	const struct timespec tick = { 0, 100 * 1000 * 1000 };

	for (long i = 0; i < s * 10 && !send_stop; i++)
		nanosleep(&tick, NULL);
}

static long retry_wait(http_priv *p, unsigned attempt)
{
	long d = p->t->retry_delay;
	curl_off_t after = 0;

	for (unsigned i = 0; i < attempt && d < RETRY_DELAY_CAP; i++)
		d *= 2;
	if (curl_easy_getinfo(p->curl, CURLINFO_RETRY_AFTER, &after) == CURLE_OK
	    && after > d)
		d = (long)(after < RETRY_DELAY_CAP ? after : RETRY_DELAY_CAP);
	return d < RETRY_DELAY_CAP ? d : RETRY_DELAY_CAP;
}

/* One line on why an attempt failed: the status and reason, or curl's. */
static void describe(http_priv *p, CURLcode cc, long status, char *buf,
		     size_t len)
{
	if (cc == CURLE_OK)
		snprintf(buf, len, "%ld %s", status, reply_line(p));
	else
		snprintf(buf, len, "%s", p->err[0] ? p->err : curl_easy_strerror(cc));
}

static int http_deliver(send_transport *tr, const send_batch *b)
{
	http_priv *p = tr->priv;
	char route[128], why[CURL_ERROR_SIZE + 256];
	strbuf url = { 0 };
	int rc = TP_OK;

	snprintf(route, sizeof route, "%s%s/%0*" PRIu64 "%s",
		 HTTPAUTH_ROUTE_BATCHES, b->source, SPOOL_SEQ_DIGITS, b->seq,
		 b->ext);
	strbuf_addf(&url, "%s%s", p->base, route);
	for (unsigned attempt = 1;; attempt++) {
		long status = 0;
		CURLcode cc = post(p, b, url.buf, route, &status);
		enum outcome o = cc == CURLE_OK
			? classify_status(p, b, url.buf, status, &rc)
			: classify_curl(p, b, url.buf, cc, &rc);
		if (o != O_RETRY) {
			if (o == O_SENT)
				rc = TP_OK;
			break;
		}
		describe(p, cc, status, why, sizeof why);
		if (attempt > (unsigned)p->t->retries || send_stop) {
			log_error("target %s: batch %s: %s: %s (gave up after "
				  "%u attempt%s)", b->target, b->name, url.buf,
				  why, attempt, attempt == 1 ? "" : "s");
			break;
		}
		long wait = retry_wait(p, attempt - 1);
		log_info("target %s: batch %s: %s; retry %u of %ld in %ld s",
			 b->target, b->name, why, attempt, p->t->retries, wait);
		nap(wait);
	}
	if (send_stop && rc == TP_EUNAVAIL)
		rc = TP_ETEMP;
	strbuf_free(&url);
	return rc;
}

/* ---- setup ---- */

static void http_free(send_transport *tr)
{
	http_priv *p = tr->priv;

	if (p->curl)
		curl_easy_cleanup(p->curl);
	if (p->token) {
		explicit_bzero(p->token, strlen(p->token));
		free(p->token);
	}
	free(p->base);
	strbuf_free(&p->reply);
	free(p);
	free(tr);
	if (--curl_users == 0)
		curl_global_cleanup();
}

/* The endpoint must be a plain base URL: credentials belong in token_file. */
static int check_endpoint(const tp_target *t)
{
	const char *e = t->endpoint;
	const char *host = strstr(e, "://") + 3;
	size_t auth = strcspn(host, "/");

	if (memchr(host, '@', auth)) {
		log_error("target %s: endpoint %s: user credentials in the URL "
			  "are not supported; use token_file", t->name, e);
		return -1;
	}
	if (strpbrk(e, "?#")) {
		log_error("target %s: endpoint %s: want a base URL without "
			  "query or fragment", t->name, e);
		return -1;
	}
	return 0;
}

/* Options that hold for every request of the run. */
static int setup_curl(http_priv *p)
{
	const tp_target *t = p->t;
	CURL *c = p->curl;
	int bad = 0;

	bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, p->err);
	bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "teleport/" TP_VERSION);
	bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, t->connect_timeout);
	bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT, t->timeout);
	/* A stall (no byte either way) ends the request well before timeout. */
	bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	bad |= curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
				t->timeout < 60 ? t->timeout : 60L);
	bad |= curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
	bad |= curl_easy_setopt(c, CURLOPT_READDATA, p);
	bad |= curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
	bad |= curl_easy_setopt(c, CURLOPT_SEEKDATA, p);
	bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
	/* TLS peer and host verification stay on, as libcurl defaults. */
	if (t->ca_file)
		bad |= curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
	if (t->client_cert)
		bad |= curl_easy_setopt(c, CURLOPT_SSLCERT, t->client_cert);
	if (t->client_key)
		bad |= curl_easy_setopt(c, CURLOPT_SSLKEY, t->client_key);
	if (t->proxy)
		bad |= curl_easy_setopt(c, CURLOPT_PROXY, t->proxy);
	return bad ? -1 : 0;
}

send_transport *send_http_new(const tp_target *t, int *rc)
{
	char err[512];
	size_t n = strlen(t->endpoint);

	*rc = TP_ECONFIG;
	if (check_endpoint(t) < 0)
		return NULL;
	if (curl_users++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		curl_users--;
		log_error("target %s: libcurl initialisation failed", t->name);
		*rc = TP_EFAIL;
		return NULL;
	}
	send_transport *tr = xcalloc(1, sizeof *tr);
	http_priv *p = xcalloc(1, sizeof *p);
	tr->priv = p;
	tr->deliver = http_deliver;
	tr->free = http_free;
	p->t = t;
	p->fd = -1;
	while (n > 0 && t->endpoint[n - 1] == '/')
		n--;
	p->base = xstrndup(t->endpoint, n);
	if (t->token_file && !(p->token = token_read(t->token_file, err, sizeof err))) {
		log_error("target %s: token_file %s", t->name, err);
		http_free(tr);
		return NULL;
	}
	p->curl = curl_easy_init();
	if (!p->curl || setup_curl(p) < 0) {
		log_error("target %s: libcurl setup failed (ca_file, client_cert, "
			  "client_key or proxy refused)", t->name);
		http_free(tr);
		return NULL;
	}
	*rc = TP_OK;
	return tr;
}
