/*
 * recv_mhd.c - tp-recv --listen and --inetd on libmicrohttpd.
 *
 * One thread, external polling: MHD_run_wait() between checks of the idle
 * timeout, --max-requests and the stop flag. Verifying and storing a batch
 * happens inside the access handler, so requests are served one at a
 * time; a batch is answered 2xx only once it is durable.
 *
 * Bodies stream through http_body() into a temp file, piece by piece
 * (MHD_OPTION_CONNECTION_MEMORY_LIMIT bounds the pieces). A request that
 * can be refused on its headers gets its answer in the first handler call:
 * MHD then skips the body and closes the connection.
 */
#include <microhttpd.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "httpauth.h"
#include "log.h"
#include "recv_http.h"
#include "strbuf.h"
#include "tp.h"

#define MEMORY_LIMIT (128 * 1024)   /* per connection: headers, body pieces */
#define CONNECTION_LIMIT 32
#define PER_IP_LIMIT 8
#define POLL_MS 500

typedef struct mhd_srv {
	recv_ctx *r;
	const recv_http_opts *o;
	struct MHD_Daemon *d;
	unsigned active;            /* open connections */
	unsigned long answered;     /* responses queued */
	time_t last;                /* last sign of life of any connection */
	bool inetd, closed, quiesced;
} mhd_srv;

typedef struct mhd_req {
	http_upload *up;
	http_reply rep;
	bool answered;
	bool refused;               /* body refused midway: connection cut */
	char peer[80];
} mhd_req;

/* "1.2.3.4:5", "[::1]:5", or "local" for a Unix socket. */
static void format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
			size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (!sa || len < sizeof(sa_family_t) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    getnameinfo(sa, len, host, sizeof host, port, sizeof port,
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(buf, size, "local");
		return;
	}
	snprintf(buf, size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

__attribute__((format(printf, 2, 0)))
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof buf, fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	/* MHD's own view (failed TCP_NODELAY on Unix sockets, clients that
	 * went away): worth a debug line, never an error of ours. */
	log_debug("libmicrohttpd: %s", buf);
}

/* ---- requests ---- */

static const char *header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static long long content_length(struct MHD_Connection *c)
{
	const char *v = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;

	if (header(c, MHD_HTTP_HEADER_TRANSFER_ENCODING) || !v)
		return -1;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	return errno || *end || n < 0 ? -1 : n;
}

static http_req make_req(struct MHD_Connection *c, const char *url,
			 const char *method, mhd_req *m)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	format_addr(sa, !sa ? 0 : sa->sa_family == AF_INET6
		    ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
		    m->peer, sizeof m->peer);
	return (http_req){
		.method = method, .path = url,
		.content_type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE),
		.length = content_length(c),
		.source = header(c, HTTPAUTH_HDR_SOURCE),
		.date = header(c, HTTPAUTH_HDR_DATE),
		.auth = header(c, HTTPAUTH_HDR_AUTH),
		.peer = m->peer,
	};
}

static enum MHD_Result queue(mhd_srv *s, struct MHD_Connection *c, mhd_req *m)
{
	http_reply *rep = &m->rep;
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		rep->body.len, rep->body.buf ? rep->body.buf : (char *)"",
		MHD_RESPMEM_MUST_COPY);

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				rep->content_type);
	if (rep->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
	if (rep->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Teleport-HMAC");
	s->answered++;
	/* The last request allowed: let the client's keep-alive go too. */
	if (s->o->max_requests && s->answered >= s->o->max_requests)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	m->answered = true;
	enum MHD_Result ret = MHD_queue_response(c, rep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	mhd_srv *s = cls;
	mhd_req *m = *con_cls;

	(void)version;
	s->last = time(NULL);
	if (!m) {               /* headers only: answer now if we can */
		m = xcalloc(1, sizeof *m);
		*con_cls = m;
		http_req q = make_req(c, url, method, m);
		if (http_begin(s->r, &q, &m->up, &m->rep))
			return queue(s, c, m);
		return MHD_YES;
	}
	if (m->answered) {      /* nothing more is wanted */
		*size = 0;
		return MHD_YES;
	}
	if (*size) {
		size_t n = *size;
		*size = 0;
		/* No answer may be queued while the body is coming: a body
		 * over the limit (chunked, no Content-Length) just ends the
		 * connection. */
		if (http_body(m->up, data, n, &m->rep) == 0)
			return MHD_YES;
		m->refused = true;
		return MHD_NO;
	}
	http_end(m->up, &m->rep);
	return queue(s, c, m);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	mhd_srv *s = cls;
	mhd_req *m = *con_cls;

	(void)c;
	if (!m)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && m->up &&
	    !m->answered && !m->refused)
		log_warn("upload from %s cut off before its end: nothing stored",
			 m->peer);
	http_upload_free(m->up);
	http_reply_free(&m->rep);
	free(m);
	*con_cls = NULL;
	s->last = time(NULL);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
			  enum MHD_ConnectionNotificationCode code)
{
	mhd_srv *s = cls;

	(void)c;
	(void)ctx;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		s->active++;
	} else {
		s->active--;
		s->closed = true;
	}
	s->last = time(NULL);
}

/* ---- the daemon ---- */

static struct MHD_Daemon *start(mhd_srv *s, unsigned flags, int lfd)
{
	/* The listening socket only when there is one: MHD refuses it
	 * together with MHD_USE_NO_LISTEN_SOCKET. */
	struct MHD_OptionItem sock[] = {
		{ lfd >= 0 ? MHD_OPTION_LISTEN_SOCKET : MHD_OPTION_END, lfd, NULL },
		{ MHD_OPTION_END, 0, NULL },
	};

	return MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, NULL, NULL,
		on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_ARRAY, sock,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->o->timeout,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_LIMIT,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)PER_IP_LIMIT,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
		MHD_OPTION_END);
}

/* Should a --listen server stop now? */
static bool listen_done(mhd_srv *s)
{
	const recv_http_opts *o = s->o;

	if (o->max_requests && s->answered >= o->max_requests) {
		if (!s->quiesced) {
			/* No new connections; the open ones may finish. */
			MHD_socket fd = MHD_quiesce_daemon(s->d);
			if (fd != MHD_INVALID_SOCKET)
				close(fd);
			s->quiesced = true;
		}
		if (s->active == 0) {
			log_info("served %lu requests, stopping", s->answered);
			return true;
		}
	}
	if (o->idle_timeout && s->active == 0 &&
	    time(NULL) - s->last >= (time_t)o->idle_timeout) {
		log_info("idle for %u s, stopping", o->idle_timeout);
		return true;
	}
	return false;
}

static void serve(mhd_srv *s)
{
	s->last = time(NULL);
	while (!recv_http_stop) {
		MHD_run_wait(s->d, POLL_MS);
		if (s->inetd ? s->closed && s->active == 0 : listen_done(s))
			break;
	}
	if (recv_http_stop)
		log_info("signal received, stopping");
}

/* ---- --listen ---- */

/* "HOST:PORT", "[V6]:PORT", ":PORT" or "*:PORT" (any address). */
static int split_hostport(const char *s, char *host, size_t hlen,
			  const char **port)
{
	const char *colon = strrchr(s, ':');

	if (!colon || !colon[1] || strspn(colon + 1, "0123456789") !=
	    strlen(colon + 1))
		return -1;
	const char *h = s;
	size_t n = (size_t)(colon - s);
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= hlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	if (!strcmp(host, "*"))
		host[0] = '\0';
	*port = colon + 1;
	return 0;
}

static int bind_listen(const char *hostport, int *fd)
{
	char host[256];
	const char *port;
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM }, *res, *ai;

	if (split_hostport(hostport, host, sizeof host, &port) < 0) {
		log_error("--listen %s: want HOST:PORT, [IPV6]:PORT or :PORT",
			  hostport);
		return TP_EUSAGE;
	}
	int e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (e) {
		log_error("--listen %s: %s", hostport, gai_strerror(e));
		return TP_EUNAVAIL;
	}
	*fd = -1;
	for (ai = res; ai && *fd < 0; ai = ai->ai_next) {
		int one = 1;
		*fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
			     SOCK_NONBLOCK, ai->ai_protocol);
		if (*fd < 0)
			continue;
		setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(*fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(*fd, 64) < 0) {
			e = errno;
			close(*fd);
			*fd = -1;
			errno = e;
		}
	}
	freeaddrinfo(res);
	if (*fd < 0) {
		log_error("--listen %s: cannot listen: %m", hostport);
		return TP_EUNAVAIL;
	}
	return TP_OK;
}

/*
 * The socket systemd handed over (sd_listen_fds(3) protocol, without
 * libsystemd): fd 3, when LISTEN_PID is us. -1 none, -2 unusable.
 */
static int activated_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	int v = 0;
	socklen_t len = sizeof v;

	if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1)
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || !v) {
		log_error("socket activation: fd 3 is not a listening socket");
		return -2;
	}
	if (atoi(fds) > 1)
		log_warn("socket activation: %s sockets passed, using the first",
			 fds);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK);
	return 3;
}

static void log_listening(int fd, const char *how)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char addr[80] = "?";

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr((struct sockaddr *)&ss, len, addr, sizeof addr);
	log_info("listening on %s%s", addr, how);
}

int recv_http_listen(recv_ctx *r, const recv_http_opts *o)
{
	mhd_srv s = { .r = r, .o = o };
	int fd = activated_socket();

	if (fd == -2)
		return TP_EUNAVAIL;
	if (fd == 3) {
		log_listening(fd, " (socket activation)");
	} else {
		int rc = bind_listen(o->listen, &fd);
		if (rc != TP_OK)
			return rc;
		log_listening(fd, "");
	}
	/* MHD_USE_ITC: MHD_quiesce_daemon needs it for --max-requests. */
	s.d = start(&s, MHD_USE_ITC, fd);
	if (!s.d) {
		log_error("--listen %s: libmicrohttpd cannot start", o->listen);
		close(fd);
		return TP_EFAIL;
	}
	serve(&s);
	MHD_stop_daemon(s.d);
	if (!s.quiesced)
		close(fd);      /* MHD does not close a socket it was given */
	return TP_OK;
}

/* ---- --inetd ---- */

/*
 * Classic inetd makes stdout and stderr the client's socket too: a log
 * line there would land in the HTTP stream. Send them to /dev/null then.
 */
static void detach_stdio(void)
{
	struct stat in, st;

	if (fstat(0, &in) < 0)
		return;
	for (int fd = 1; fd <= 2; fd++)
		if (fstat(fd, &st) == 0 && st.st_dev == in.st_dev &&
		    st.st_ino == in.st_ino) {
			int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
			if (null >= 0) {
				dup2(null, fd);         /* clears O_CLOEXEC on fd */
				close(null);
			}
		}
}

int recv_http_inetd(recv_ctx *r, const recv_http_opts *o)
{
	mhd_srv s = { .r = r, .o = o, .inetd = true };
	struct sockaddr_storage peer;
	socklen_t len = sizeof peer;
	struct stat st;

	/* On a pipe MHD would drop the connection silently. */
	if (fstat(0, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		log_error("--inetd: standard input is not a socket (run tp-recv "
			  "--inetd from inetd, tcpserver, socat or a systemd "
			  "Accept=yes socket)");
		return TP_EUSAGE;
	}
	detach_stdio();
	memset(&peer, 0, sizeof peer);
	if (getpeername(0, (struct sockaddr *)&peer, &len) < 0) {
		log_error("--inetd: standard input: %m");
		return TP_EUNAVAIL;
	}
	s.d = start(&s, MHD_USE_NO_LISTEN_SOCKET, -1);
	if (!s.d) {
		log_error("--inetd: libmicrohttpd cannot start");
		return TP_EFAIL;
	}
	/* MHD owns fd 0 from here and closes it. */
	if (MHD_add_connection(s.d, 0, (struct sockaddr *)&peer, len) != MHD_YES) {
		log_error("--inetd: libmicrohttpd refused the connection: %m");
		MHD_stop_daemon(s.d);
		return TP_EFAIL;
	}
	serve(&s);
	MHD_stop_daemon(s.d);
	return TP_OK;
}
