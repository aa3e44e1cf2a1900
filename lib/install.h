/*
 * install.h - tp-install: create, upgrade or remove a node's objects.
 *
 * A source node (one with [target] sections) gets the capture schema
 * (sql/common.sql, sql/source.sql), a position row per target, and the
 * capture triggers on every table some target's globs match; a target node
 * (one with [source] sections) gets the bookkeeping of sql/target.sql.
 * The SQL files are idempotent, so running them again upgrades in place;
 * triggers are added or dropped only where they are wrong, one table per
 * transaction under lock_timeout, so the application is never blocked for
 * long.
 */
#ifndef TP_INSTALL_H
#define TP_INSTALL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include "config.h"

/* Version of the objects this build installs, per component. */
#define INSTALL_VERSION 1

/* Install or upgrade. dry_run prints the SQL to stdout instead. Exit code. */
int install_run(PGconn *conn, const tp_config *cfg, bool dry_run);
/* Remove every trigger and the schema. Exit code. */
int install_remove(PGconn *conn, const tp_config *cfg, bool dry_run);

/*
 * Attach capture triggers to matched tables that lack them (never drops
 * any), one short transaction each under lock_timeout; a table that
 * cannot get one now is logged and skipped. Exit code of the lookups.
 */
int install_capture_new(PGconn *conn, const tp_config *cfg);

/* The capture schema must be a plain identifier (it appears in regclass
 * literals inside the SQL). TP_OK or TP_ECONFIG, logged. */
int install_check_schema(const tp_config *cfg);

#endif
