/*
 * config.h - the INI file of DESIGN.md, parsed with inih.
 *
 * Every key is checked: unknown keys, repeated keys, missing required keys
 * and bad values are refused with "FILE:LINE: key: what is wrong", and the
 * commands exit 78.
 */
#ifndef TP_CONFIG_H
#define TP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum tp_ddl { TP_DDL_DIFF, TP_DDL_EVENT_TRIGGERS, TP_DDL_OFF };
enum tp_compression { TP_COMPRESS_ZSTD, TP_COMPRESS_GZIP, TP_COMPRESS_NONE };

typedef struct tp_target {
	char *name;             /* [target NAME] */
	char **tables;          /* schema-qualified globs, "public.*" */
	size_t ntables;
	char **exclude;
	size_t nexclude;
	char *apply_schema;     /* NULL: keep the source schema */
	char *endpoint;         /* "http://..", "https://..", or "dir:/path" */
	char *token_file;       /* NULL: unsigned batches */
	long batch_max_events;  /* default 10000 */
	long batch_max_bytes;   /* default 64 MiB of captured row text */
	/* http(s) endpoints only (send_http.c): */
	long connect_timeout;   /* seconds; default 10 */
	long timeout;           /* seconds one request may take; default 600 */
	long retries;           /* retries of a transient failure; default 3 */
	long retry_delay;       /* seconds before the first retry, doubling; default 1 */
	char *ca_file;          /* NULL: the system's CA store */
	char *client_cert;      /* PEM client certificate, or NULL */
	char *client_key;       /* its key, or NULL (then in client_cert) */
	char *proxy;            /* NULL: libcurl's *_proxy variables; "" none */
	int line;               /* line of the section header, for messages */
} tp_target;

typedef struct tp_source {
	char *name;             /* [source NAME] */
	char *token_file;       /* NULL: unsigned batches accepted */
	int line;
} tp_source;

typedef struct tp_config {
	char *path;
	char *node_name;        /* [node] name: [A-Za-z0-9_-], 1..63 chars */
	char *conninfo;
	char *schema;           /* default "teleport" */
	char *spool;            /* default "/var/spool/teleport" */
	enum tp_ddl ddl;        /* default diff */
	enum tp_compression compression;  /* default zstd */
	long retention;         /* seconds; default 7d */
	long max_batch_bytes;   /* [node] max_batch_bytes: biggest batch file accepted; default 1 GiB */
	bool log_syslog;        /* [node] log = syslog: also log to syslog(3); default stderr only */
	long max_lag;           /* [node] max_lag: tp-status exits 1 beyond it; default 10m */
	long rotate_interval;   /* [node] rotate_interval: event table rotation; -1: derived from retention */
	tp_target *targets;
	size_t ntargets;
	tp_source *sources;
	size_t nsources;
} tp_config;

/*
 * Which file to read: the -c flag if given, else $TP_CONFIG, else
 * /etc/teleport/tp.ini. Never NULL.
 */
const char *config_path(const char *flag);

/*
 * Load and validate. On error returns NULL and writes one line
 * ("FILE:LINE: key: message", no newline) into err.
 */
tp_config *config_load(const char *path, char *err, size_t errlen);
void config_free(tp_config *cfg);

tp_target *config_target(const tp_config *cfg, const char *name);
tp_source *config_source(const tp_config *cfg, const char *name);

/*
 * True when "schema.table" matches one of the target's tables globs and
 * none of its exclude globs. A glob is SCHEMA.TABLE with exactly one
 * unquoted '.'; each part is an fnmatch(3) pattern (no FNM_PERIOD, case
 * sensitive, no case folding) matched against its own name. Text inside
 * double quotes is literal, as in SQL: public."Odd.Name*" means table
 * Odd.Name* exactly; a backslash also quotes the next character.
 */
bool target_matches(const tp_target *t, const char *schema, const char *table);
/*
 * A glob's two parts as anchored regular expressions (PostgreSQL's ~) that
 * match what target_matches matches; malloc'd. False when not "s.t".
 */
bool glob_regex(const char *glob, char **schema_re, char **table_re);

/*
 * True when some tables glob's schema part matches schema and no exclude
 * glob "SCHEMA.*" does: the schema's own DDL (create, rename, drop) is
 * replicated to the target.
 */
bool target_matches_schema(const tp_target *t, const char *schema);

/* A node, target or source name: 1..63 of [A-Za-z0-9_-]. */
bool config_name_valid(const char *s);

/* Parse "2w", "7d", "12h", "30m", "45s", "90" (seconds). -1 on error. */
long parse_duration(const char *s);
/*
 * Parse "64M", "1G", "512k", "1000" (bytes; 1024-based, k/M/G/T in either
 * case, optionally followed by "B" or "iB"). -1 on error or overflow.
 */
long parse_size(const char *s);
/*
 * Read a token file: whole contents less trailing whitespace; refuses an
 * empty file and one over 4096 bytes. Returns malloc'd token or NULL with
 * err filled ("FILE: message"). The file's mode is not checked.
 */
char *token_read(const char *path, char *err, size_t errlen);

#endif
