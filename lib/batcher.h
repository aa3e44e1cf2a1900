/*
 * batcher.h - tp-batch: cut each target's committed events into batch
 * files in the outbox, in commit order.
 *
 * Two steps, each crash-safe on its own:
 *
 * 1. Plan (one transaction). Take the current snapshot `hi`; the target's
 *    delta is every event whose transaction is visible in `hi` and not in
 *    the target's last snapshot `lo`. Order the delta's transactions by
 *    their last event id and cut them into batches of at most
 *    batch_max_events events / batch_max_bytes captured bytes (a bigger
 *    transaction is a batch of its own: transactions are never split).
 *    Record each batch as (lo, hi, ev_lo, ev_hi] in <schema>.batch and move
 *    the target to `hi`, then commit.
 * 2. Build. For each recorded batch not yet written, read its events in
 *    ev_id order and write the file: temp name, fsync, rename, fsync of the
 *    folder; then mark it written. A batch is a pure function of its row,
 *    so a crash before the mark just builds the same batch again.
 *
 * Ordering transactions by their last event id respects every dependency:
 * a transaction that waited for another's row lock, or saw its commit,
 * gets all its later ids after the other's last.
 */
#ifndef TP_BATCHER_H
#define TP_BATCHER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include "config.h"

/*
 * Batch every target, or only `only` when not NULL. ddl_only (tp-ddlscan):
 * cut a delta only for targets whose schema changed, so the change lands
 * in the stream in order with the rows around it. Exit code.
 */
int batcher_run(PGconn *conn, const tp_config *cfg, const char *only, bool ddl_only);

/*
 * The whole of tp-batch (ddl_only false) and tp-ddlscan (true): options,
 * config, tp-batch's lock, the run, the outcome record. Exit code.
 */
int batcher_main(int argc, char **argv, const char *name, const char *usage, bool ddl_only);

#endif
