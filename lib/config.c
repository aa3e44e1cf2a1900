/*
 * config.c - load and check the INI file (see config.h, DESIGN.md).
 *
 * inih does the reading; everything it cannot tell us we track ourselves:
 *
 *  - Line numbers. The 4-argument handler gets none, so inih reads through
 *    our fgets-like reader, which counts lines. inih calls the handler
 *    right after reading a line, so the counter then names that line.
 *  - Sections. The reader spots "[...]" lines as they go by and enters the
 *    section there, so empty and repeated sections are seen too (inih only
 *    reports sections through their keys).
 *  - Long lines. Debian's inih takes runtime knobs; with a heap buffer that
 *    may grow, lines up to TP_INI_MAX_LINE - 1 bytes work. The reader
 *    refuses longer ones rather than let inih cut them silently.
 *
 * Multi-line values are switched off: an indented line is then an
 * ordinary line, and a stray indented "key = value" becomes a repeated key.
 */
#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "strbuf.h"

#define TP_INI_MAX_LINE 8192
#define LINE_LIMIT (TP_INI_MAX_LINE - 2)        /* bytes, without '\n' */
#define NAME_MAX_LEN 63                         /* PostgreSQL's NAMEDATALEN - 1 */

_Static_assert(offsetof(tp_target, ntables) == offsetof(tp_target, tables) + sizeof(char **) &&
	       offsetof(tp_target, nexclude) == offsetof(tp_target, exclude) + sizeof(char **),
	       "set_globs expects each glob count right after its array");

enum sec { SEC_NONE, SEC_NODE, SEC_TARGET, SEC_SOURCE };
enum vtype { V_NAME, V_STR, V_IDENT, V_ABSPATH, V_ENDPOINT, V_DDL,
	V_COMPRESSION, V_DURATION, V_TIMEOUT, V_SIZE, V_COUNT, V_COUNT0,
	V_PROXY, V_GLOBS, V_LOG };

/* Every key the file may hold; off is the field's offset in its struct. */
static const struct key {
	enum sec sec;
	const char *name;
	enum vtype type;
	size_t off;
	bool required;
} keys[] = {
	{ SEC_NODE, "name", V_NAME, offsetof(tp_config, node_name), true },
	{ SEC_NODE, "conninfo", V_STR, offsetof(tp_config, conninfo), true },
	{ SEC_NODE, "schema", V_IDENT, offsetof(tp_config, schema), false },
	{ SEC_NODE, "spool", V_ABSPATH, offsetof(tp_config, spool), false },
	{ SEC_NODE, "ddl", V_DDL, offsetof(tp_config, ddl), false },
	{ SEC_NODE, "compression", V_COMPRESSION, offsetof(tp_config, compression), false },
	{ SEC_NODE, "retention", V_DURATION, offsetof(tp_config, retention), false },
	{ SEC_NODE, "max_batch_bytes", V_SIZE, offsetof(tp_config, max_batch_bytes), false },
	{ SEC_NODE, "log", V_LOG, offsetof(tp_config, log_syslog), false },
	{ SEC_NODE, "max_lag", V_TIMEOUT, offsetof(tp_config, max_lag), false },
	{ SEC_NODE, "rotate_interval", V_DURATION, offsetof(tp_config, rotate_interval), false },
	{ SEC_TARGET, "tables", V_GLOBS, offsetof(tp_target, tables), true },
	{ SEC_TARGET, "exclude", V_GLOBS, offsetof(tp_target, exclude), false },
	{ SEC_TARGET, "apply_schema", V_IDENT, offsetof(tp_target, apply_schema), false },
	{ SEC_TARGET, "endpoint", V_ENDPOINT, offsetof(tp_target, endpoint), true },
	{ SEC_TARGET, "token_file", V_STR, offsetof(tp_target, token_file), false },
	{ SEC_TARGET, "batch_max_events", V_COUNT, offsetof(tp_target, batch_max_events), false },
	{ SEC_TARGET, "batch_max_bytes", V_SIZE, offsetof(tp_target, batch_max_bytes), false },
	{ SEC_TARGET, "connect_timeout", V_TIMEOUT, offsetof(tp_target, connect_timeout), false },
	{ SEC_TARGET, "timeout", V_TIMEOUT, offsetof(tp_target, timeout), false },
	{ SEC_TARGET, "retries", V_COUNT0, offsetof(tp_target, retries), false },
	{ SEC_TARGET, "retry_delay", V_DURATION, offsetof(tp_target, retry_delay), false },
	{ SEC_TARGET, "ca_file", V_STR, offsetof(tp_target, ca_file), false },
	{ SEC_TARGET, "client_cert", V_STR, offsetof(tp_target, client_cert), false },
	{ SEC_TARGET, "client_key", V_STR, offsetof(tp_target, client_key), false },
	{ SEC_TARGET, "proxy", V_PROXY, offsetof(tp_target, proxy), false },
	{ SEC_SOURCE, "token_file", V_STR, offsetof(tp_source, token_file), false },
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* State shared by the reader and the handler. */
struct parse {
	const char *path;
	FILE *f;
	int line;               /* line the reader is in */
	size_t linelen;         /* bytes of that line read so far */
	tp_config *cfg;
	enum sec sec;           /* section being read */
	int sec_line;
	char sec_label[80];     /* "[target x]", for messages */
	void *obj;              /* struct the section's keys fill */
	int node_line;          /* 0 until [node] is seen */
	int seen[NKEYS];        /* line where each key was set in this section */
	char *err;
	size_t errlen;
	bool failed;
};

/*
 * Record the first error, "FILE:LINE: what: message"; LINE and what are
 * left out when 0 and NULL. Returns 0, inih's "handler failed".
 */
static int fail(struct parse *p, int line, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(struct parse *p, int line, const char *what, const char *fmt, ...)
{
	if (p->failed)
		return 0;
	p->failed = true;
	int n = line > 0 ? snprintf(p->err, p->errlen, "%s:%d: ", p->path, line)
			 : snprintf(p->err, p->errlen, "%s: ", p->path);
	if (what && n >= 0 && (size_t)n < p->errlen)
		n += snprintf(p->err + n, p->errlen - (size_t)n, "%s: ", what);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return 0;
}

bool config_name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_-") == n;
}

/* ---- globs ------------------------------------------------------------ */

/*
 * A glob is "schema.table". Each part is an fnmatch(3) pattern in which
 * text inside double quotes is literal, as in SQL: public."Odd.Name*" is
 * schema public, table exactly Odd.Name*. A backslash also quotes the next
 * character, and a '.' inside a bracket expression is no separator.
 * scan_glob walks s up to end and reports the unquoted '.'s and ','s.
 */
struct scan { const char *dot; int ndots; const char *comma; bool open_quote; };

static const char *bracket_end(const char *s, const char *end)
{
	const char *q = s + 1;
	if (q < end && (*q == '!' || *q == '^'))
		q++;
	if (q < end && *q == ']')
		q++;
	while (q < end && *q != ']')
		q++;
	return q < end ? q : NULL;      /* no ']': the '[' is literal */
}

static struct scan scan_glob(const char *s, const char *end)
{
	struct scan sc = { NULL, 0, NULL, false };
	bool quoted = false;

	for (const char *q = s; q < end; q++) {
		if (*q == '"') {
			quoted = !quoted;       /* "" inside quotes toggles twice */
		} else if (quoted) {
			continue;
		} else if (*q == '\\' && q + 1 < end) {
			q++;
		} else if (*q == '[' && bracket_end(q, end)) {
			q = bracket_end(q, end);
		} else if (*q == '.') {
			if (!sc.ndots++)
				sc.dot = q;
		} else if (*q == ',' && !sc.comma) {
			sc.comma = q;
		}
	}
	sc.open_quote = quoted;
	return sc;
}

/* One part of a glob as a plain fnmatch pattern: quotes become escapes. */
static char *glob_pattern(const char *s, const char *end)
{
	strbuf sb = { 0 };
	bool quoted = false;

	strbuf_reset(&sb);
	for (const char *q = s; q < end; q++) {
		if (*q == '"') {
			if (quoted && q + 1 < end && q[1] == '"') {
				strbuf_addc(&sb, '"');  /* "" is a literal quote */
				q++;
			} else {
				quoted = !quoted;
			}
		} else if (quoted && strchr("*?[]\\", *q)) {
			strbuf_addc(&sb, '\\');
			strbuf_addc(&sb, *q);
		} else {
			strbuf_addc(&sb, *q);
		}
	}
	return strbuf_detach(&sb);
}

static bool glob_match(const char *glob, const char *schema, const char *table)
{
	const char *end = glob + strlen(glob);
	struct scan sc = scan_glob(glob, end);
	if (sc.ndots != 1)
		return false;   /* config_load refuses these */
	char *sp = glob_pattern(glob, sc.dot);
	char *tp = glob_pattern(sc.dot + 1, end);
	bool m = fnmatch(sp, schema, 0) == 0 && fnmatch(tp, table, 0) == 0;
	free(sp);
	free(tp);
	return m;
}

/*
 * One fnmatch pattern (no flags) as an anchored POSIX regular expression
 * for PostgreSQL's ~: * and ? become .* and ., a bracket expression is
 * kept ([! becomes [^), and every other ASCII punctuation is escaped.
 */
static void fnmatch_regex(const char *pat, strbuf *out)
{
	const char *end = pat + strlen(pat);

	strbuf_adds(out, "^(");
	for (const char *q = pat; q < end; q++) {
		const char *close;

		if (*q == '*') {
			strbuf_adds(out, ".*");
		} else if (*q == '?') {
			strbuf_addc(out, '.');
		} else if (*q == '[' && (close = bracket_end(q, end))) {
			strbuf_addc(out, '[');
			q++;
			if (*q == '!' || *q == '^') {
				strbuf_addc(out, '^');
				q++;
			}
			for (; q < close; q++) {
				if (*q == '\\')
					strbuf_addc(out, '\\');
				strbuf_addc(out, *q);
			}
			strbuf_addc(out, ']');
		} else {
			if (*q == '\\' && q + 1 < end)
				q++;
			if ((unsigned char)*q < 0x80 && !isalnum((unsigned char)*q))
				strbuf_addc(out, '\\');
			strbuf_addc(out, *q);
		}
	}
	strbuf_adds(out, ")$");
}

bool glob_regex(const char *glob, char **schema_re, char **table_re)
{
	const char *end = glob + strlen(glob);
	struct scan sc = scan_glob(glob, end);
	strbuf s = { 0 }, t = { 0 };

	if (sc.ndots != 1)
		return false;
	char *sp = glob_pattern(glob, sc.dot);
	char *tp = glob_pattern(sc.dot + 1, end);
	fnmatch_regex(sp, &s);
	fnmatch_regex(tp, &t);
	free(sp);
	free(tp);
	*schema_re = strbuf_detach(&s);
	*table_re = strbuf_detach(&t);
	return true;
}

bool target_matches(const tp_target *t, const char *schema, const char *table)
{
	bool in = false;
	for (size_t i = 0; i < t->ntables && !in; i++)
		in = glob_match(t->tables[i], schema, table);
	for (size_t i = 0; i < t->nexclude && in; i++)
		in = !glob_match(t->exclude[i], schema, table);
	return in;
}

/* Does the schema part of glob match schema, and is its table part "*"? */
static bool glob_schema_match(const char *glob, const char *schema, bool *all_tables)
{
	const char *end = glob + strlen(glob);
	struct scan sc = scan_glob(glob, end);
	if (sc.ndots != 1)
		return false;
	char *sp = glob_pattern(glob, sc.dot);
	bool m = fnmatch(sp, schema, 0) == 0;
	free(sp);
	*all_tables = strcmp(sc.dot + 1, "*") == 0;
	return m;
}

bool target_matches_schema(const tp_target *t, const char *schema)
{
	bool in = false, all;
	for (size_t i = 0; i < t->ntables && !in; i++)
		in = glob_schema_match(t->tables[i], schema, &all);
	for (size_t i = 0; i < t->nexclude && in; i++)
		in = !(glob_schema_match(t->exclude[i], schema, &all) && all);
	return in;
}

/* Split a comma-separated list of globs into *list; checks each one. */
static int set_globs(struct parse *p, const char *key, const char *v,
		     char ***list, size_t *n)
{
	const char *s = v, *end = v + strlen(v);

	for (;;) {
		struct scan all = scan_glob(s, end);
		const char *stop = all.comma ? all.comma : end;
		while (s < stop && (*s == ' ' || *s == '\t'))
			s++;
		const char *e = stop;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		struct scan sc = scan_glob(s, e);
		if (s == e)
			return fail(p, p->line, key, "empty pattern in list");
		if (sc.open_quote)
			return fail(p, p->line, key, "unterminated quote in \"%.*s\"", (int)(e - s), s);
		if (sc.ndots != 1)
			return fail(p, p->line, key, "\"%.*s\" is not schema.table (%s)",
				    (int)(e - s), s, sc.ndots ? "more than one '.'" : "no '.'");
		if (sc.dot == s || sc.dot + 1 == e)
			return fail(p, p->line, key, "\"%.*s\" has an empty schema or table part",
				    (int)(e - s), s);
		*list = xrealloc(*list, (*n + 1) * sizeof **list);
		(*list)[(*n)++] = xstrndup(s, (size_t)(e - s));
		if (stop == end)
			return 1;
		s = stop + 1;
	}
}

/* ---- values ----------------------------------------------------------- */

/* Leading decimal digits of s (no sign, no space); -1 on none or overflow. */
static long parse_num(const char *s, const char **end)
{
	char *e;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	long n = strtol(s, &e, 10);
	*end = e;
	return errno ? -1 : n;
}

/* n times m, or -1 when that overflows a long. */
static long scale(long n, long m)
{
	return n < 0 || n > LONG_MAX / m ? -1 : n * m;
}

long parse_duration(const char *s)
{
	static const char units[] = "smhdw";
	static const long mult[] = { 1, 60, 3600, 86400, 7 * 86400 };
	const char *end = NULL;
	long n = parse_num(s, &end);

	if (n < 0 || !*end)
		return n;
	const char *u = strchr(units, *end);
	if (!u || end[1])
		return -1;
	return scale(n, mult[u - units]);
}

long parse_size(const char *s)
{
	/* 1024-based: "64M", "64MB" and "64MiB" all mean 64 MiB. */
	static const char units[] = "kKmMgGtT";
	static const long mult[] = { 1L << 10, 1L << 10, 1L << 20, 1L << 20,
				     1L << 30, 1L << 30, 1L << 40, 1L << 40 };
	const char *end = NULL;
	long n = parse_num(s, &end), m = 1;

	if (n < 0)
		return -1;
	const char *u = *end ? strchr(units, *end) : NULL;
	if (u) {
		m = mult[u - units];
		end++;
	}
	if (*end && strcmp(end, "B") && !(u && !strcmp(end, "iB")))
		return -1;
	return scale(n, m);
}

/* A whole number, nothing after it; -1 otherwise. */
static long parse_count(const char *s)
{
	const char *end = NULL;
	long n = parse_num(s, &end);
	return n < 0 || *end ? -1 : n;
}

static int set_value(struct parse *p, const struct key *k, const char *v)
{
	char *field = (char *)p->obj + k->off;
	char **str = (char **)field;
	long *num = (long *)field;
	long n;

	switch (k->type) {
	case V_NAME:
		if (!config_name_valid(v))
			return fail(p, p->line, k->name, "\"%s\" is not a valid name "
				    "(1 to 63 of A-Z a-z 0-9 _ -)", v);
		break;
	case V_STR:
		if (!*v)
			return fail(p, p->line, k->name, "empty value");
		break;
	case V_IDENT:
		if (!*v || strlen(v) > NAME_MAX_LEN)
			return fail(p, p->line, k->name, "must be 1 to 63 bytes");
		break;
	case V_ABSPATH:
		if (v[0] != '/')
			return fail(p, p->line, k->name, "\"%s\" is not an absolute path", v);
		break;
	case V_ENDPOINT:
		if (!((strncmp(v, "http://", 7) == 0 && v[7]) ||
		      (strncmp(v, "https://", 8) == 0 && v[8]) ||
		      (strncmp(v, "dir:/", 5) == 0)))
			return fail(p, p->line, k->name, "\"%s\" is not http://..., "
				    "https://... or dir:/absolute/path", v);
		break;
	case V_DDL:
		if (!strcmp(v, "diff"))
			*(enum tp_ddl *)field = TP_DDL_DIFF;
		else if (!strcmp(v, "event-triggers"))
			*(enum tp_ddl *)field = TP_DDL_EVENT_TRIGGERS;
		else if (!strcmp(v, "off"))
			*(enum tp_ddl *)field = TP_DDL_OFF;
		else
			return fail(p, p->line, k->name, "\"%s\" is not diff, event-triggers or off", v);
		return 1;
	case V_COMPRESSION:
		if (!strcmp(v, "zstd"))
			*(enum tp_compression *)field = TP_COMPRESS_ZSTD;
		else if (!strcmp(v, "gzip"))
			*(enum tp_compression *)field = TP_COMPRESS_GZIP;
		else if (!strcmp(v, "none"))
			*(enum tp_compression *)field = TP_COMPRESS_NONE;
		else
			return fail(p, p->line, k->name, "\"%s\" is not zstd, gzip or none", v);
		return 1;
	case V_DURATION:
		if ((n = parse_duration(v)) < 0)
			return fail(p, p->line, k->name, "\"%s\" is not a duration "
				    "(like 90, 45s, 30m, 12h, 7d, 2w)", v);
		*num = n;
		return 1;
	case V_TIMEOUT:
		if ((n = parse_duration(v)) <= 0)
			return fail(p, p->line, k->name, "\"%s\" is not a positive duration "
				    "(like 90, 45s, 30m, 1h)", v);
		*num = n;
		return 1;
	case V_SIZE:
		if ((n = parse_size(v)) <= 0)
			return fail(p, p->line, k->name, "\"%s\" is not a positive size "
				    "(like 512k, 64M, 1G)", v);
		*num = n;
		return 1;
	case V_COUNT:
		if ((n = parse_count(v)) <= 0)
			return fail(p, p->line, k->name, "\"%s\" is not a positive whole number", v);
		*num = n;
		return 1;
	case V_COUNT0:
		if ((n = parse_count(v)) < 0 || n > 100)
			return fail(p, p->line, k->name, "\"%s\" is not a whole number "
				    "from 0 to 100", v);
		*num = n;
		return 1;
	case V_PROXY:
		/* "none": no proxy, whatever the environment says */
		if (!*v)
			return fail(p, p->line, k->name, "empty value (say none for no proxy)");
		if (!strcmp(v, "none"))
			v = "";
		break;
	case V_LOG:
		if (strcmp(v, "stderr") && strcmp(v, "syslog"))
			return fail(p, p->line, k->name, "\"%s\" is not stderr or syslog", v);
		*(bool *)field = !strcmp(v, "syslog");
		return 1;
	case V_GLOBS:
		/* the count follows the array in tp_target */
		return set_globs(p, k->name, v, (char ***)field, (size_t *)(field + sizeof(char **)));
	}
	free(*str);             /* a default, such as schema */
	*str = xstrdup(v);
	return 1;
}

/* ---- sections --------------------------------------------------------- */

/* Leaving a section: every required key must have been set. */
static int end_section(struct parse *p)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].sec == p->sec && keys[i].required && !p->seen[i])
			return fail(p, p->sec_line, keys[i].name, "missing in %s", p->sec_label);
	return 1;
}

static int enter_named(struct parse *p, enum sec sec, const char *kind, const char *name)
{
	tp_config *c = p->cfg;
	const char *ws = name;

	while (*name == ' ' || *name == '\t')
		name++;
	if (name == ws || !config_name_valid(name))
		return fail(p, p->line, p->sec_label, "\"%s\" is not a valid %s name "
			    "(1 to 63 of A-Z a-z 0-9 _ -)", name, kind);
	if (sec == SEC_TARGET) {
		const tp_target *old = config_target(c, name);
		if (old)
			return fail(p, p->line, p->sec_label, "repeated section (first on line %d)", old->line);
		c->targets = xrealloc(c->targets, (c->ntargets + 1) * sizeof *c->targets);
		tp_target *t = &c->targets[c->ntargets++];
		*t = (tp_target){ .name = xstrdup(name), .line = p->line,
				  .batch_max_events = 10000, .batch_max_bytes = 64L << 20,
				  .connect_timeout = 10, .timeout = 600, .retries = 3,
				  .retry_delay = 1 };
		p->obj = t;
	} else {
		const tp_source *old = config_source(c, name);
		if (old)
			return fail(p, p->line, p->sec_label, "repeated section (first on line %d)", old->line);
		c->sources = xrealloc(c->sources, (c->nsources + 1) * sizeof *c->sources);
		tp_source *s = &c->sources[c->nsources++];
		*s = (tp_source){ .name = xstrdup(name), .line = p->line };
		p->obj = s;
	}
	p->sec = sec;
	return 1;
}

/* A "[...]" line; s points at the '[', end at the end of what was read. */
static int enter_section(struct parse *p, const char *s, const char *end)
{
	char text[72];

	if (!end_section(p))
		return 0;
	memset(p->seen, 0, sizeof p->seen);
	p->sec = SEC_NONE;
	p->sec_line = p->line;
	const char *close = memchr(s, ']', (size_t)(end - s));
	size_t n = close ? (size_t)(close - s - 1) : 0;
	if (!close || n >= sizeof text)
		return fail(p, p->line, NULL, "bad section header (want [node], "
			    "[target NAME] or [source NAME])");
	memcpy(text, s + 1, n);
	text[n] = '\0';
	snprintf(p->sec_label, sizeof p->sec_label, "[%s]", text);

	char *t = text + strspn(text, " \t");
	for (char *e = t + strlen(t); e > t && (e[-1] == ' ' || e[-1] == '\t'); )
		*--e = '\0';
	if (!strcmp(t, "node")) {
		if (p->node_line)
			return fail(p, p->line, "[node]", "repeated section (first on line %d)", p->node_line);
		p->node_line = p->line;
		p->sec = SEC_NODE;
		p->obj = p->cfg;
		return 1;
	}
	if (!strncmp(t, "target", 6) && (t[6] == ' ' || t[6] == '\t' || !t[6]))
		return enter_named(p, SEC_TARGET, "target", t + 6);
	if (!strncmp(t, "source", 6) && (t[6] == ' ' || t[6] == '\t' || !t[6]))
		return enter_named(p, SEC_SOURCE, "source", t + 6);
	return fail(p, p->line, p->sec_label, "unknown section (want [node], "
		    "[target NAME] or [source NAME])");
}

/* ---- inih callbacks --------------------------------------------------- */

/* fgets for inih that counts lines, spots sections and refuses long lines. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;

	if (p->failed || !fgets(str, num, p->f))
		return NULL;
	bool start = p->linelen == 0;
	if (start)
		p->line++;
	size_t len = strlen(str);
	bool eol = len > 0 && str[len - 1] == '\n';
	if (p->linelen + len - eol > LINE_LIMIT) {
		fail(p, p->line, NULL, "line longer than %d bytes", LINE_LIMIT);
		return NULL;
	}
	p->linelen = eol ? 0 : p->linelen + len;
	if (start) {
		const char *q = str;
		if (p->line == 1 && !strncmp(q, "\xEF\xBB\xBF", 3))
			q += 3;         /* UTF-8 byte order mark */
		q += strspn(q, " \t\r");
		if (*q == '[' && !enter_section(p, q, str + len))
			return NULL;
	}
	return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	(void)section;          /* the reader tracks sections */
	if (p->failed)
		return 0;
	if (p->sec == SEC_NONE)
		return fail(p, p->line, name, "outside any section");
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].sec != p->sec || strcmp(keys[i].name, name))
			continue;
		if (p->seen[i])
			return fail(p, p->line, name, "repeated (first set on line %d)", p->seen[i]);
		p->seen[i] = p->line;
		return set_value(p, &keys[i], value);
	}
	return fail(p, p->line, name, "unknown key in %s", p->sec_label);
}

/* ---- the API ---------------------------------------------------------- */

const char *config_path(const char *flag)
{
	const char *env = getenv("TP_CONFIG");

	if (flag)
		return flag;
	return env && *env ? env : "/etc/teleport/tp.ini";
}

static tp_config *config_new(const char *path)
{
	tp_config *c = xcalloc(1, sizeof *c);

	c->path = xstrdup(path);
	c->schema = xstrdup("teleport");
	c->spool = xstrdup("/var/spool/teleport");
	c->ddl = TP_DDL_DIFF;
	c->compression = TP_COMPRESS_ZSTD;
	c->retention = 7 * 86400;
	c->max_batch_bytes = 1L << 30;
	c->max_lag = 600;
	c->rotate_interval = -1;
	return c;
}

tp_config *config_load(const char *path, char *err, size_t errlen)
{
	struct parse p = { .path = path, .err = err, .errlen = errlen };

	p.f = fopen(path, "re");
	if (!p.f) {
		fail(&p, 0, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	p.cfg = config_new(path);

	/* Debian's inih knobs: a growing heap line buffer, one error is enough. */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = TP_INI_MAX_LINE;
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;

	errno = 0;
	int rc = ini_parse_stream(reader, &p, handler, &p);
	if (ferror(p.f))
		fail(&p, 0, NULL, "cannot read: %s", strerror(errno ? errno : EIO));
	else if (rc == -2)
		fail(&p, 0, NULL, "out of memory");
	else if (rc > 0)
		fail(&p, rc, NULL, "syntax error (want key = value, [section] or ; comment)");
	fclose(p.f);
	if (!p.failed && end_section(&p) && !p.node_line)
		fail(&p, 0, "[node]", "section missing");
	if (p.failed) {
		config_free(p.cfg);
		return NULL;
	}
	return p.cfg;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

void config_free(tp_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ntargets; i++) {
		tp_target *t = &c->targets[i];
		free(t->name);
		free_list(t->tables, t->ntables);
		free_list(t->exclude, t->nexclude);
		free(t->apply_schema);
		free(t->endpoint);
		free(t->token_file);
		free(t->ca_file);
		free(t->client_cert);
		free(t->client_key);
		free(t->proxy);
	}
	for (size_t i = 0; i < c->nsources; i++) {
		free(c->sources[i].name);
		free(c->sources[i].token_file);
	}
	free(c->targets);
	free(c->sources);
	free(c->path);
	free(c->node_name);
	free(c->conninfo);
	free(c->schema);
	free(c->spool);
	free(c);
}

tp_target *config_target(const tp_config *c, const char *name)
{
	for (size_t i = 0; i < c->ntargets; i++)
		if (!strcmp(c->targets[i].name, name))
			return &c->targets[i];
	return NULL;
}

tp_source *config_source(const tp_config *c, const char *name)
{
	for (size_t i = 0; i < c->nsources; i++)
		if (!strcmp(c->sources[i].name, name))
			return &c->sources[i];
	return NULL;
}

/*
 * Tokens are short secrets; anything bigger than TOKEN_MAX is the wrong
 * file. A group- or world-readable token file is worth a word from the
 * admin, but it is not ours to refuse: the caller may check the mode.
 */
#define TOKEN_MAX 4096

char *token_read(const char *path, char *err, size_t errlen)
{
	char buf[TOKEN_MAX + 1];
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	while (len < sizeof buf) {
		ssize_t n = read(fd, buf + len, sizeof buf - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	char *tok = NULL;
	if (len > TOKEN_MAX) {
		snprintf(err, errlen, "%s: token longer than %d bytes", path, TOKEN_MAX);
	} else {
		while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
			len--;
		if (len == 0)
			snprintf(err, errlen, "%s: empty token", path);
		else
			tok = xstrndup(buf, len);
	}
	explicit_bzero(buf, sizeof buf);
	return tok;
}
