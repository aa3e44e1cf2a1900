/*
 * applytab.c - the "=" definition lines of a batch, parsed once per run.
 *
 * Every member repeats the definitions it uses, under TIDs that may differ
 * from member to member, so the cache is keyed by the definition's text
 * after the TID. An entry keeps the quoted names and the prepared
 * statements' names: a table seen in a thousand members is parsed, quoted
 * and prepared once per session.
 *
 * Statements carry no casts: the server infers each parameter's type from
 * the column it is assigned to or compared with, so any type works,
 * user-defined ones included.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "copytext.h"
#include "db.h"
#include "strbuf.h"

/* PostgreSQL's column limit; more means a forged definition. */
#define MAX_COLS 1600

struct apply_tabcache {
	apply_table **buckets;
	size_t nbuckets;
	size_t count;
	unsigned serial;
};

apply_tabcache *tabcache_new(void)
{
	apply_tabcache *c = xcalloc(1, sizeof *c);

	c->nbuckets = 64;
	c->buckets = xcalloc(c->nbuckets, sizeof *c->buckets);
	return c;
}

static void table_free(apply_table *t)
{
	for (size_t i = 0; i < t->ncols; i++)
		free(t->cols[i]);
	free(t->cols);
	free(t->keycol);
	free(t->key);
	free(t->qname);
	free(t->display);
	free(t->relname);
	free(t->copy_sql);
	free(t);
}

void tabcache_free(apply_tabcache *c)
{
	if (!c)
		return;
	for (size_t b = 0; b < c->nbuckets; b++) {
		apply_table *t = c->buckets[b], *next;
		for (; t; t = next) {
			next = t->next;
			table_free(t);
		}
	}
	free(c->buckets);
	free(c);
}

void tabcache_forget_prepared(apply_tabcache *c)
{
	for (size_t b = 0; b < c->nbuckets; b++)
		for (apply_table *t = c->buckets[b]; t; t = t->next)
			memset(t->prepared, 0, sizeof t->prepared);
}

void tabcache_forget_cascades(apply_tabcache *c)
{
	for (size_t b = 0; b < c->nbuckets; b++)
		for (apply_table *t = c->buckets[b]; t; t = t->next)
			t->cascade_child = -1;  /* learnt again at its next definition */
}

/* FNV-1a: short keys, no adversary worth a keyed hash (batches are verified). */
static uint64_t hash_key(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static void cache_grow(apply_tabcache *c)
{
	size_t n = c->nbuckets * 4;
	apply_table **b = xcalloc(n, sizeof *b);

	for (size_t i = 0; i < c->nbuckets; i++) {
		apply_table *t = c->buckets[i], *next;
		for (; t; t = next) {
			next = t->next;
			size_t h = hash_key(t->key, strlen(t->key)) % n;
			t->next = b[h];
			b[h] = t;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

/* Parse a decimal number made of digits only (no sign, no spaces). */
static int parse_uint(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (!s || len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Column names, key positions; fields point at "COL TYPE KEYPOS" triples. */
static int table_columns(apply_table *t, PGconn *conn, char **f, size_t *lens,
			 char *err, size_t errlen)
{
	unsigned long kp;

	t->cols = xcalloc(t->ncols, sizeof *t->cols);
	t->keycol = xcalloc(t->ncols, sizeof *t->keycol);
	for (size_t i = 0; i < t->ncols; i++) {
		char **c = f + 3 * i;
		if (!c[0] || !*c[0] || !c[1] ||
		    parse_uint(c[2], lens[3 * i + 2], t->ncols, &kp) < 0) {
			snprintf(err, errlen, "bad column %zu in a definition", i + 1);
			return -1;
		}
		t->cols[i] = db_ident(conn, c[0]);
		if (kp == 0)
			continue;
		if (t->keycol[kp - 1]) {
			snprintf(err, errlen, "key position %lu twice in a definition", kp);
			return -1;
		}
		t->keycol[kp - 1] = i + 1;  /* +1: zero marks "unset" until the end */
		t->nkeys++;
	}
	for (size_t k = 0; k < t->nkeys; k++) {
		if (!t->keycol[k]) {
			snprintf(err, errlen, "key positions not 1..%zu in a definition", t->nkeys);
			return -1;
		}
		t->keycol[k]--;
	}
	return 0;
}

static char *log_safe(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return d;
}

static char *build_copy_sql(const apply_table *t)
{
	strbuf sb = { 0 };

	strbuf_addf(&sb, "COPY %s (", t->qname);
	for (size_t i = 0; i < t->ncols; i++)
		strbuf_addf(&sb, "%s%s", i ? ", " : "", t->cols[i]);
	strbuf_adds(&sb, ") FROM STDIN");
	return strbuf_detach(&sb);
}

/* Parse the fields of a definition (already split) into a new entry. */
static apply_table *table_new(PGconn *conn, char **f, size_t *lens, int n,
			      char *err, size_t errlen)
{
	apply_table *t;

	if (n < 7 || (n - 4) % 3 != 0 || !f[2] || !f[3] || !*f[2] || !*f[3]) {
		snprintf(err, errlen, "malformed table definition");
		return NULL;
	}
	t = xcalloc(1, sizeof *t);
	t->ncols = (size_t)(n - 4) / 3;
	if (table_columns(t, conn, f + 4, lens + 4, err, errlen) < 0) {
		table_free(t);
		return NULL;
	}
	t->qname = db_qualified(conn, f[2], f[3]);
	t->display = log_safe(t->qname);
	t->relname = xstrdup(f[3]);
	t->copy_sql = build_copy_sql(t);
	return t;
}

/* The part of a definition line after "=\tTID\t", and the TID. */
static const char *def_key(const char *line, size_t len, unsigned *tid)
{
	const char *tab;
	unsigned long v;

	if (len < 3 || line[0] != '=' || line[1] != '\t')
		return NULL;
	tab = memchr(line + 2, '\t', len - 2);
	if (!tab || parse_uint(line + 2, (size_t)(tab - line - 2), 0xffffffffUL, &v) < 0)
		return NULL;
	*tid = (unsigned)v;
	return tab + 1;
}

static apply_table *cache_find(apply_tabcache *c, const char *key, size_t klen, uint64_t h)
{
	for (apply_table *t = c->buckets[h % c->nbuckets]; t; t = t->next)
		if (strlen(t->key) == klen && memcmp(t->key, key, klen) == 0)
			return t;
	return NULL;
}

static apply_table *table_parse(PGconn *conn, const char *line, size_t len,
				char *err, size_t errlen)
{
	enum { MAXF = 4 + 3 * MAX_COLS };
	char *copy = xstrndup(line, len);
	char **f = xmalloc(MAXF * sizeof *f);
	size_t *lens = xmalloc(MAXF * sizeof *lens);
	int n = copytext_split(copy, len, f, lens, MAXF);
	apply_table *t = NULL;

	if (n < 0)
		snprintf(err, errlen, "malformed table definition");
	else
		t = table_new(conn, f, lens, n, err, errlen);
	free(copy);
	free(f);
	free(lens);
	return t;
}

apply_table *tabcache_define(apply_tabcache *c, PGconn *conn, const char *line,
			     size_t len, unsigned *tid, char *err, size_t errlen)
{
	const char *key = def_key(line, len, tid);
	size_t klen;
	uint64_t h;
	apply_table *t;

	if (!key) {
		snprintf(err, errlen, "malformed table definition");
		return NULL;
	}
	klen = len - (size_t)(key - line);
	h = hash_key(key, klen);
	if ((t = cache_find(c, key, klen, h)))
		return t;
	if (!(t = table_parse(conn, line, len, err, errlen)))
		return NULL;
	t->key = xstrndup(key, klen);
	t->serial = ++c->serial;
	t->cascade_child = -1;
	if (c->count >= 2 * c->nbuckets)
		cache_grow(c);
	t->next = c->buckets[h % c->nbuckets];
	c->buckets[h % c->nbuckets] = t;
	c->count++;
	return t;
}

/* "$N", the placeholder of parameter idx (0-based) */
static int dollar(strbuf *sb, size_t idx, void *arg)
{
	(void)arg;
	strbuf_addf(sb, "$%zu", idx + 1);
	return 0;
}

/* " WHERE k1 = <p1> AND k2 = <p2> ..." */
static int add_key_match(strbuf *sb, const apply_table *t, tab_param_fn fn, void *arg)
{
	for (size_t k = 0; k < t->nkeys; k++) {
		strbuf_addf(sb, "%s%s = ", k ? " AND " : " WHERE ", t->cols[t->keycol[k]]);
		if (fn(sb, k, arg) < 0)
			return -1;
	}
	return 0;
}

static int add_insert(strbuf *sb, const apply_table *t, tab_param_fn fn, void *arg)
{
	strbuf_addf(sb, "INSERT INTO %s (", t->qname);
	for (size_t i = 0; i < t->ncols; i++)
		strbuf_addf(sb, "%s%s", i ? ", " : "", t->cols[i]);
	strbuf_adds(sb, ") VALUES (");
	for (size_t i = 0; i < t->ncols; i++) {
		strbuf_adds(sb, i ? ", " : "");
		if (fn(sb, i, arg) < 0)
			return -1;
	}
	strbuf_adds(sb, ")");
	return 0;
}

static int add_update(strbuf *sb, const apply_table *t, tab_param_fn fn, void *arg)
{
	strbuf_addf(sb, "UPDATE %s SET ", t->qname);
	for (size_t i = 0; i < t->ncols; i++) {
		strbuf_addf(sb, "%s%s = ", i ? ", " : "", t->cols[i]);
		if (fn(sb, t->nkeys + i, arg) < 0)
			return -1;
	}
	return add_key_match(sb, t, fn, arg);
}

/*
 * INSERT: parameters 1..n are the columns. UPDATE: 1..k the old key,
 * k+1..k+n the new row (every column: the source sent the whole row).
 * DELETE: 1..k the old key.
 */
int tab_stmt_build(strbuf *sb, const apply_table *t, enum apply_op op,
		   tab_param_fn fn, void *arg)
{
	if (op == OP_INSERT)
		return add_insert(sb, t, fn, arg);
	if (op == OP_UPDATE)
		return add_update(sb, t, fn, arg);
	strbuf_addf(sb, "DELETE FROM %s", t->qname);
	return add_key_match(sb, t, fn, arg);
}

char *tab_stmt_sql(const apply_table *t, enum apply_op op)
{
	strbuf sb = { 0 };

	tab_stmt_build(&sb, t, op, dollar, NULL);
	return strbuf_detach(&sb);
}

void tab_stmt_name(const apply_table *t, enum apply_op op, char *buf, size_t len)
{
	static const char letter[OP_NOPS] = { 'i', 'u', 'd' };

	snprintf(buf, len, "tp_%u_%c", t->serial, letter[op]);
}

size_t tab_nparams(const apply_table *t, enum apply_op op)
{
	return op == OP_INSERT ? t->ncols : op == OP_UPDATE ? t->nkeys + t->ncols : t->nkeys;
}
