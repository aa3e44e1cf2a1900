/*
 * tp.h - things every part of teleport shares: exit codes and version.
 *
 * Exit codes follow sysexits.h, as DESIGN.md fixes them. Keep this the only
 * place they are defined; man pages list the same table.
 */
#ifndef TP_H
#define TP_H

#define TP_VERSION "0.1.0"

enum tp_exit {
	TP_OK = 0,          /* done, or nothing to do */
	TP_EFAIL = 1,       /* any failure not listed below */
	TP_EUSAGE = 64,     /* bad command line */
	TP_EDATA = 65,      /* bad input data: corrupt, forged, unknown batch */
	TP_EUNAVAIL = 69,   /* a database or endpoint is unavailable */
	TP_ETEMP = 75,      /* temporary: locked, not ready, retry later */
	TP_ECONFIG = 78     /* configuration error */
};

/* Worse of two exit codes, so a run reports its most serious problem. */
int tp_exit_worse(int a, int b);

#endif
