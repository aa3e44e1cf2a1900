/*
 * recv_cgi.c - tp-recv --cgi: one request, as a CGI program (RFC 3875).
 *
 * The web server has parsed HTTP: the request is in the environment
 * (REQUEST_METHOD, PATH_INFO, CONTENT_TYPE, CONTENT_LENGTH, and each
 * request header as HTTP_*), the body on stdin, exactly CONTENT_LENGTH
 * bytes. The answer goes to stdout with a "Status:" header. TLS, client
 * limits and timeouts towards the client are the web server's.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "recv_http.h"
#include "strbuf.h"
#include "tp.h"

#define CHUNK 65536

static long long env_length(void)
{
	const char *v = getenv("CONTENT_LENGTH");
	char *end;

	if (!v || !*v)
		return -1;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	return errno || *end || n < 0 ? -2 : n;
}

/* Read exactly len bytes of body into the upload. 0, or -1 (reply set). */
static int read_body(http_upload *u, long long len, unsigned timeout,
		     http_reply *rep)
{
	char *buf = xmalloc(CHUNK);
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	int rc = 0;

	while (len > 0 && rc == 0) {
		int p = poll(&pfd, 1, (int)timeout * 1000);
		ssize_t n = -1;
		if (p < 0 && errno == EINTR)
			continue;
		if (p > 0) {
			n = read(0, buf, len < CHUNK ? (size_t)len : CHUNK);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0) {
			log_error("request body from %s: %s", getenv("REMOTE_ADDR") ?
				  getenv("REMOTE_ADDR") : "?", p == 0 ? "stalled" :
				  n == 0 ? "shorter than CONTENT_LENGTH" :
				  strerror(errno));
			rep->status = 400;
			rep->content_type = "text/plain; charset=utf-8";
			strbuf_reset(&rep->body);
			strbuf_adds(&rep->body, "request body incomplete\n");
			rc = -1;
		} else {
			rc = http_body(u, buf, (size_t)n, rep);
			len -= n;
		}
	}
	free(buf);
	return rc;
}

static void write_reply(const http_reply *rep)
{
	printf("Status: %u %s\r\n", rep->status, http_reason(rep->status));
	printf("Content-Type: %s\r\n", rep->content_type);
	if (rep->allow)
		printf("Allow: %s\r\n", rep->allow);
	printf("\r\n");
	if (rep->body.len)
		fwrite(rep->body.buf, 1, rep->body.len, stdout);
	if (fflush(stdout) != 0)
		log_error("could not write the answer: %m");
}

void recv_http_cgi_busy(unsigned retry_after)
{
	printf("Status: 503 %s\r\nRetry-After: %u\r\n"
	       "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	       "another tp-recv is running\n", http_reason(503), retry_after);
	fflush(stdout);
}

int recv_http_cgi(recv_ctx *r, const recv_http_opts *o)
{
	const char *remote = getenv("REMOTE_ADDR");
	http_req q = {
		.method = getenv("REQUEST_METHOD"),
		.path = getenv("PATH_INFO") ? getenv("PATH_INFO") : "",
		.content_type = getenv("CONTENT_TYPE"),
		.length = env_length(),
		.source = getenv("HTTP_X_TELEPORT_SOURCE"),
		.date = getenv("HTTP_X_TELEPORT_DATE"),
		.auth = getenv("HTTP_X_TELEPORT_AUTH"),
		.peer = remote ? remote : "?",
	};
	http_reply rep = { 0 };
	http_upload *up = NULL;

	if (!q.method) {
		log_error("--cgi: REQUEST_METHOD is not set: not run as a CGI "
			  "program");
		return TP_EUSAGE;
	}
	if (!strcmp(q.method, "POST") && q.length < 0) {
		rep = (http_reply){ .status = q.length == -1 ? 411 : 400,
				    .content_type = "text/plain; charset=utf-8" };
		strbuf_adds(&rep.body, "a valid CONTENT_LENGTH is required\n");
	} else if (http_begin(r, &q, &up, &rep) == 0 &&
		   read_body(up, q.length, o->timeout, &rep) == 0) {
		http_end(up, &rep);
	}
	write_reply(&rep);
	http_upload_free(up);
	http_reply_free(&rep);
	return TP_OK;
}
