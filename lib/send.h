/*
 * send.h - tp-send: ship each target's outbox to its endpoint.
 *
 * The outbox of target T is <spool>/outbox/T/<seq16><ext>. A batch is
 * shipped oldest first; once its endpoint confirmed it durable, the file is
 * moved to <spool>/outbox/T/sent/, which is the record that it was sent.
 * A crash between the two steps only re-sends the batch, and receivers
 * take an identical re-send as a duplicate: nothing is lost or doubled.
 *
 * How a batch travels is a transport, chosen by the endpoint's scheme:
 * "dir:PATH" (send_dir.c) or "http(s)://" (send_http.c). Each transport
 * implements deliver(); the queue logic here is shared.
 */
#ifndef TP_SEND_H
#define TP_SEND_H

#include <stdint.h>
#include "config.h"

/* One batch on its way: what every transport is told. */
typedef struct send_batch {
	const char *path;      /* the outbox file */
	const char *name;      /* its name: "<seq16><ext>" */
	const char *ext;       /* ".tar.zst", ".tar.gz" or ".tar" */
	const char *source;    /* this node's [node] name */
	const char *target;    /* the [target NAME] */
	uint64_t seq;
} send_batch;

typedef struct send_transport send_transport;
struct send_transport {
	/*
	 * Deliver one batch; return TP_OK only once the endpoint holds it
	 * durably (or already held identical bytes). Else log one error
	 * line naming the target and batch and return an exit code:
	 * TP_EUNAVAIL endpoint down, TP_EDATA conflicting batch there,
	 * TP_ETEMP retry later.
	 */
	int (*deliver)(send_transport *t, const send_batch *b);
	void (*free)(send_transport *t);
	void *priv;
};

/*
 * The transport for target t's endpoint, or NULL with *rc set and an
 * error logged (TP_ECONFIG: unsupported or malformed endpoint).
 */
send_transport *send_transport_new(const tp_target *t, int *rc);
void send_transport_free(send_transport *t);

/* "dir:PATH" transport: copy to PATH/<source>.<seq16><ext>. */
send_transport *send_dir_new(const char *path);

/*
 * "http://" and "https://" transport: POST to <endpoint>/v1/batches/...;
 * NULL with *rc set and an error logged (token_file unreadable: 78).
 */
send_transport *send_http_new(const tp_target *t, int *rc);

/*
 * Ship every target's outbox, or only target `only` when non-NULL (an
 * unknown name is TP_EUSAGE). A failed batch stops its target's queue, the
 * other targets go on; returns the worst exit code.
 */
int send_run(const tp_config *cfg, const char *only);

/*
 * Ship target t's outbox, oldest first, stopping at the first failure.
 */
int send_target(const tp_config *cfg, const tp_target *t);

/*
 * Read a tar stream of batch files ("<seq16>.tar[.zst|.gz]" entries) from
 * fd and store each, verified, durably into target t's outbox. Stops at
 * the first bad entry (TP_EDATA); the entries before it stay stored.
 */
int send_store_stream(const tp_config *cfg, const tp_target *t, int fd);

/*
 * Set by SIGINT/SIGTERM handlers: the queue stops between batches and the
 * run exits TP_ETEMP.
 */
extern volatile int send_stop;

#endif
