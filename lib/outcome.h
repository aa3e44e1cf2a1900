/*
 * outcome.h - every command leaves a record of its last run in
 * <spool>/state/<command>.json, for tp-status and for people:
 *
 *   {"command": "tp-batch", "start": "2024-05-01T12:00:00Z",
 *    "end": "...", "exit": 0, "summary": "3 batches",
 *    "error": null, "error_since": null, "last_ok": "..."}
 *
 * "error" is the last error line of a failed run; "error_since" the start
 * of the first run of the current streak of failures (kept across failed
 * runs, cleared by a successful one); "last_ok" the end of the last run
 * that exited 0. Written durably (temp, fsync, rename), so a reader never
 * sees half a record.
 */
#ifndef TP_OUTCOME_H
#define TP_OUTCOME_H

#include <time.h>
#include "config.h"

/*
 * Record this run (the command is log_progname(); the start is when the
 * process started). Never changes the run's exit code: a failure to write
 * is a warning.
 */
void outcome_record(const tp_config *cfg, int rc);

/* Set the run's one-line summary ("rotated event_1, 3 files deleted"). */
void outcome_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A record read back; times are 0 when absent. */
typedef struct outcome {
	char *command;
	time_t start, end, error_since, last_ok;
	int exit;
	char *summary;          /* NULL when none */
	char *error;            /* NULL when the run succeeded */
} outcome;

/* Read the record at path. 0, or -1 with errno set (EINVAL: not a record). */
int outcome_read(const char *path, outcome *o);
void outcome_clear(outcome *o);

/*
 * The small JSON files below the spool that tp-status reads (these
 * records, hold.h's): written durably to path in dir (created if need
 * be), and read whole, at most 64 KiB. 0, or -1 with errno set.
 */
struct strbuf;
int outcome_file_write(const char *dir, const char *path, const struct strbuf *sb);
int outcome_file_read(const char *path, struct strbuf *sb);

/* "2024-05-01T12:00:00Z" into buf (at least 21 bytes); "" for 0. */
/* Append `"key": "ISO time"`, or `"key": null` when t is 0, to JSON in sb. */
void json_add_time_member(struct strbuf *sb, const char *key, time_t t);
void tp_time_iso(time_t t, char *buf, size_t len);
/* The reverse (fractional seconds allowed, dropped); 0 when s is not such a time. */
time_t tp_time_parse(const char *s);

#endif
