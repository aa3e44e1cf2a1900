/*
 * logsys.h - the syslog(3) side of log.c. A file of its own because
 * <syslog.h> defines LOG_INFO and LOG_DEBUG as macros, which would clash
 * with log.h's level names.
 */
#ifndef TP_LOGSYS_H
#define TP_LOGSYS_H

/* openlog with ident (copied: syslog keeps the pointer), LOG_PID, LOG_DAEMON. */
void logsys_open(const char *ident);
/* Send one line; level is log.h's 0..3 (error, warning, info, debug). */
void logsys_send(int level, const char *msg);

#endif
