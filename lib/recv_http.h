/*
 * recv_http.h - tp-recv's HTTP ways in: --listen and --inetd on
 * libmicrohttpd (recv_mhd.c), --cgi under a web server (recv_cgi.c).
 * All three share the request logic of recv_http.c, so a request gets
 * the same answer whichever way it came.
 *
 * Routes (the protocol is in httpauth.h and man/tp-recv.1):
 *   POST /v1/batches/<source>/<seq16><ext>  body: one batch file
 *        201 stored, 200 already held (both: durable in the inbox)
 *        401 credential missing or wrong (before any body is read)
 *        403 credential of another source than the path's
 *        400 malformed request, 413 larger than max_batch_bytes,
 *        415 not a batch media type or extension, 422 bad batch,
 *        409 another batch already held under that number,
 *        503 the receiver cannot store it now (retry)
 *   GET  /v1/status   JSON: per source, highest batch received, applied
 *   anything else: 404 or 405.
 * Every answer other than 2xx carries a one-line reason as its body.
 */
#ifndef TP_RECV_HTTP_H
#define TP_RECV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include "recv.h"
#include "strbuf.h"

typedef struct recv_http_opts {
	const char *listen;         /* --listen HOST:PORT */
	unsigned idle_timeout;      /* --listen: exit after so many idle s; 0 never */
	unsigned long max_requests; /* --listen: exit after so many; 0 no limit */
	unsigned timeout;           /* s a connection may stall; cut then */
} recv_http_opts;

/*
 * Serve until the idle timeout, max_requests or SIGTERM/SIGINT. Uses the
 * socket of systemd socket activation when LISTEN_PID/LISTEN_FDS hand
 * one over, else binds HOST:PORT (port 0: any, logged at info level).
 * TP_OK, TP_EUSAGE (bad HOST:PORT), TP_EUNAVAIL (cannot bind), TP_EFAIL.
 */
int recv_http_listen(recv_ctx *r, const recv_http_opts *o);

/* Serve the one connection on stdin, which must be a socket. */
int recv_http_inetd(recv_ctx *r, const recv_http_opts *o);

/* Serve the one CGI request of the environment and stdin. */
int recv_http_cgi(recv_ctx *r, const recv_http_opts *o);

/* The CGI answer when the node's tp-recv lock stays busy: 503. */
void recv_http_cgi_busy(unsigned retry_after);

/* Set by the SIGTERM/SIGINT handler: servers stop between requests. */
extern volatile int recv_http_stop;

/* ---- shared by the front ends ---- */

typedef struct http_req {
	const char *method;
	const char *path;           /* decoded request path (the route) */
	const char *content_type;   /* NULL when absent */
	long long length;           /* Content-Length; -1 when unknown */
	const char *source;         /* X-Teleport-Source, Date, Auth: */
	const char *date;           /* NULL when absent */
	const char *auth;
	const char *peer;           /* client address, for the log */
} http_req;

typedef struct http_reply {
	unsigned status;
	const char *content_type;
	const char *allow;          /* 405: the Allow header */
	strbuf body;
} http_reply;

typedef struct http_upload http_upload;

/*
 * A request's headers are in. Returns 1 when the answer is known now (the
 * reply is filled: no body is to be read), or 0 when the body is to be
 * taken: *up is then the upload to feed.
 */
int http_begin(recv_ctx *r, const http_req *q, http_upload **up,
	       http_reply *rep);

/*
 * Body bytes, in order. 0, or -1 when the upload failed (too large, disk):
 * the reply is filled and the rest of the body is not wanted.
 */
int http_body(http_upload *u, const void *data, size_t n, http_reply *rep);

/* The whole body is in: verify, store, and fill the reply. */
void http_end(http_upload *u, http_reply *rep);

/* Done with an upload (finished or not): its temp file goes. NULL is fine. */
void http_upload_free(http_upload *u);

void http_reply_free(http_reply *rep);

/* "201 Created" for the status line and CGI's Status: header. */
const char *http_reason(unsigned status);

#endif
