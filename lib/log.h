/*
 * log.h - one line per event on stderr, prefixed with the command's name:
 *   "tp-batch: error: could not open \"x\": No such file or directory"
 * Levels: -q shows errors only, default adds warnings, -v adds info,
 * -vv adds debug. Row data never goes to the log.
 */
#ifndef TP_LOG_H
#define TP_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_init(const char *progname);
const char *log_progname(void);
void log_set_level(int level);      /* clamps to LOG_ERROR..LOG_DEBUG */
int log_get_level(void);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "tp-x: hint: ..." printed after an error, at the error's level. */
void log_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The message of the last error logged (without prefix), or "". */
const char *log_last_error(void);
/* From now on also send every line to syslog(3) (--syslog, log = syslog). */
void log_syslog(void);

#endif
