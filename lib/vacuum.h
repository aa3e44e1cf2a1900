/*
 * vacuum.h - tp-vacuum: drop what every consumer has confirmed, and
 * nothing else, in short transactions.
 *
 * Source side:
 *  - Event tables rotate (PgQ): writers append to event_<cur>; at most
 *    once per run, and only once event_<cur> has been current for
 *    rotate_interval, event_<next> is TRUNCATEd and becomes current. That
 *    happens in one short transaction and only when event_<next> is
 *    drained: an ACCESS EXCLUSIVE lock on it is granted within 2 s (a
 *    transaction still writing into it holds ROW EXCLUSIVE; a reader holds
 *    ACCESS SHARE: either postpones rotation), no batch is planned but
 *    unwritten, and every event in it is visible in every target's last
 *    snapshot, i.e. batched. A target that is down keeps its events.
 *    Nothing ever UPDATEs or DELETEs an event row, so event tables have no
 *    dead tuples.
 *  - <schema>.batch rows whose files were written and sent, older than
 *    retention, go in chunks; the newest row per target always stays.
 * Target side: <schema>.apply_log rows older than retention, in chunks,
 * keeping the newest per source.
 * Spool: outbox/<t>/sent/, inbox/<s>/applied/ and quarantine/ files, and
 * leftover temporary files, older than retention (by mtime).
 */
#ifndef TP_VACUUM_H
#define TP_VACUUM_H

#include <stdbool.h>
#include <stdint.h>
#include "config.h"

typedef struct vacuum_opts {
	bool rotate_now;        /* ignore rotate_interval (still only when drained) */
} vacuum_opts;

/* Rows deleted per statement (and transaction) when pruning tables. */
#define VACUUM_CHUNK 1000
/* Rotation at most this often when rotate_interval is not set. */
#define VACUUM_ROTATE_CAP 7200

/* Take the tp-vacuum lock, prune the spool, connect, vacuum. Exit code. */
int vacuum_run(const tp_config *cfg, const vacuum_opts *o);

/* The spool part alone; adds to *deleted. TP_OK or TP_EFAIL (logged). */
int vacuum_spool(const tp_config *cfg, uint64_t *deleted);

/* rotate_interval, or its default: retention / 10, at most VACUUM_ROTATE_CAP. */
long vacuum_rotate_interval(const tp_config *cfg);

#endif
