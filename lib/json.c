/*
 * json.c - JSON string writing, and a validating reader on jsmn.
 *
 * jsmn only tokenizes: it accepts {"a" "b"}, trailing commas, several
 * top-level values, "tru" and "01", and never unescapes. Manifests come
 * from the network, so after jsmn we check the text between tokens
 * ourselves, the primitives, the keys and every string.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

/*
 * Private copy of jsmn; parent links make closing a container O(1)
 * instead of a scan back over all tokens (quadratic on a long members
 * list). The layout change stays inside this file.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

/* ---- UTF-8 ---- */

/*
 * Length of the valid UTF-8 sequence at s (n bytes left), or 0. Refuses
 * overlong forms, surrogates and code points past U+10FFFF.
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;
	if (s[0] < 0x80) return 1;
	else if (s[0] >= 0xc2 && s[0] <= 0xdf) { len = 2; cp = s[0] & 0x1f; }
	else if (s[0] >= 0xe0 && s[0] <= 0xef) { len = 3; cp = s[0] & 0x0f; }
	else if (s[0] >= 0xf0 && s[0] <= 0xf4) { len = 4; cp = s[0] & 0x07; }
	else return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void utf8_put(strbuf *out, unsigned cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) { b[0] = (char)cp; n = 1; }
	else if (cp < 0x800) { b[0] = (char)(0xc0 | cp >> 6); n = 2; }
	else if (cp < 0x10000) { b[0] = (char)(0xe0 | cp >> 12); n = 3; }
	else { b[0] = (char)(0xf0 | cp >> 18); n = 4; }
	for (size_t i = 1; i < n; i++)
		b[i] = (char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3f));
	strbuf_add(out, b, n);
}

/* ---- writing ---- */

int json_add_str(strbuf *out, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	int rc = 0;
	strbuf_addc(out, '"');
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		size_t n = utf8_len(u + i, len - i);
		if (n == 0) {
			strbuf_adds(out, "\\ufffd");
			rc = -1;
			i++;
		} else if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			strbuf_add(out, e, 2);
			i++;
		} else if (c < 0x20) {
			const char *short_esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" :
				c == '\r' ? "\\r" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
			if (short_esc)
				strbuf_adds(out, short_esc);
			else
				strbuf_addf(out, "\\u%04x", c);
			i++;
		} else {
			strbuf_add(out, s + i, n);
			i += n;
		}
	}
	strbuf_addc(out, '"');
	return rc;
}

int json_add_strz(strbuf *out, const char *s)
{
	return json_add_str(out, s, strlen(s));
}

/* ---- reading ---- */

struct json_doc {
	jsmntok_t *tok;
	int ntok;
	int *next;          /* next[i]: first token after i's subtree */
	size_t *soff;       /* strings, primitives: offset of the (unescaped) text in arena */
	strbuf arena;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* \uXXXX at s[*i] (just past the 'u'), pairing surrogates. -1 if bad. */
static long unicode_escape(const char *s, int end, int *i)
{
	if (end - *i < 4)
		return -1;
	long cp = hex4(s + *i);
	*i += 4;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return -1;      /* a low surrogate alone */
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (end - *i < 6 || s[*i] != '\\' || s[*i + 1] != 'u')
			return -1;
		long lo = hex4(s + *i + 2);
		if (lo < 0xdc00 || lo > 0xdfff)
			return -1;
		*i += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return cp > 0 ? cp : -1;    /* \u0000 would cut C strings short */
}

/* The byte a one-letter escape stands for, or -1. */
static int simple_escape(char e)
{
	switch (e) {
	case '"': return '"';
	case '\\': return '\\';
	case '/': return '/';
	case 'b': return '\b';
	case 'f': return '\f';
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	default: return -1;
	}
}

/* Unescape string token t into the arena (plus a NUL). */
static int unescape(json_doc *d, const char *s, const jsmntok_t *t, char *err, size_t errlen)
{
	strbuf *a = &d->arena;
	for (int i = t->start; i < t->end;) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20)
			return fail(err, errlen, "control character in a JSON string at byte %d", i);
		if (c != '\\') {
			size_t n = utf8_len((const unsigned char *)s + i, (size_t)(t->end - i));
			if (n == 0)
				return fail(err, errlen, "invalid UTF-8 in JSON at byte %d", i);
			strbuf_add(a, s + i, n);
			i += (int)n;
			continue;
		}
		int at = i++;
		char e = i < t->end ? s[i++] : 0;
		int v = simple_escape(e);
		if (v >= 0) {
			strbuf_addc(a, (char)v);
		} else if (e == 'u') {
			long cp = unicode_escape(s, t->end, &i);
			if (cp < 0)
				return fail(err, errlen, "bad \\u escape in JSON at byte %d", at);
			utf8_put(a, (unsigned)cp);
		} else {
			return fail(err, errlen, "bad escape in JSON at byte %d", at);
		}
	}
	strbuf_addc(a, '\0');
	return 0;
}

/* true, false, null, or a number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
static bool primitive_ok(const char *p, size_t n)
{
	if ((n == 4 && !memcmp(p, "true", 4)) || (n == 5 && !memcmp(p, "false", 5)) ||
	    (n == 4 && !memcmp(p, "null", 4)))
		return true;
	size_t i = 0;
#define DIGITS(min) do { size_t s0 = i; while (i < n && p[i] >= '0' && p[i] <= '9') i++; \
		if (i - s0 < (min)) return false; } while (0)
	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else
		DIGITS(1);
	if (i < n && p[i] == '.') {
		i++;
		DIGITS(1);
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		DIGITS(1);
	}
#undef DIGITS
	return i == n;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Text s[a..b) is whitespace, sep (unless 0), whitespace. */
static bool gap_ok(const char *s, int a, int b, char sep)
{
	while (a < b && is_ws(s[a]))
		a++;
	if (sep) {
		if (a >= b || s[a] != sep)
			return false;
		a++;
	}
	while (a < b && is_ws(s[a]))
		a++;
	return a == b;
}

/* Where a token's text begins and ends, quotes included. */
static int raw_start(const jsmntok_t *t) { return t->type == JSMN_STRING ? t->start - 1 : t->start; }
static int raw_end(const jsmntok_t *t) { return t->type == JSMN_STRING ? t->end + 1 : t->end; }

static int cmp_keys(const void *a, const void *b, void *arg)
{
	const json_doc *d = arg;
	return strcmp(d->arena.buf + d->soff[*(const int *)a],
		      d->arena.buf + d->soff[*(const int *)b]);
}

/* Sorting the keys keeps a hostile object of n keys at n log n. */
static int check_duplicates(json_doc *d, int obj, char *err, size_t errlen)
{
	int n = d->tok[obj].size;
	if (n < 2)
		return 0;
	int *keys = xmalloc((size_t)n * sizeof *keys);
	for (int k = 0, j = obj + 1; k < n; k++, j = d->next[j])
		keys[k] = j;
	qsort_r(keys, (size_t)n, sizeof *keys, cmp_keys, d);
	int rc = 0;
	for (int k = 1; k < n && rc == 0; k++)
		if (cmp_keys(&keys[k - 1], &keys[k], d) == 0)
			rc = fail(err, errlen, "duplicate key in JSON at byte %d",
				  raw_start(&d->tok[keys[k]]));
	free(keys);
	return rc;
}

/*
 * Container i: its children's kinds and the separators between them.
 * A key is a string of size 1 (jsmn hangs its value under it); any other
 * string has size 0, and a primitive has no children.
 */
static int check_container(json_doc *d, const char *s, int i, char *err, size_t errlen)
{
	const jsmntok_t *c = &d->tok[i];
	bool obj = c->type == JSMN_OBJECT;
	int pos = c->start + 1, j = i + 1;
	for (int k = 0; k < c->size; k++) {
		if (j >= d->ntok)
			return fail(err, errlen, "malformed JSON near byte %d", pos);
		const jsmntok_t *t = &d->tok[j];
		if (!gap_ok(s, pos, raw_start(t), k ? ',' : 0))
			return fail(err, errlen, "malformed JSON near byte %d", pos);
		if (obj) {
			if (t->type != JSMN_STRING || t->size != 1 || j + 1 >= d->ntok)
				return fail(err, errlen, "bad object key in JSON at byte %d", t->start);
			pos = raw_end(t);
			t = &d->tok[++j];
			if (!gap_ok(s, pos, raw_start(t), ':'))
				return fail(err, errlen, "malformed JSON near byte %d", pos);
		}
		if ((t->type == JSMN_STRING || t->type == JSMN_PRIMITIVE) && t->size != 0)
			return fail(err, errlen, "malformed JSON near byte %d", t->start);
		pos = raw_end(t);
		j = d->next[j];
	}
	if (j != d->next[i] || !gap_ok(s, pos, c->end - 1, 0))
		return fail(err, errlen, "malformed JSON near byte %d", pos);
	return obj ? check_duplicates(d, i, err, errlen) : 0;
}

/* Subtree ends, computed backwards so children are known first. */
static int link_tokens(json_doc *d)
{
	for (int i = d->ntok - 1; i >= 0; i--) {
		int j = i + 1;
		for (int k = 0; k < d->tok[i].size; k++) {
			if (j >= d->ntok)
				return -1;
			j = d->next[j];
		}
		d->next[i] = j;
	}
	return 0;
}

static int tokenize(json_doc *d, const char *s, size_t len, char *err, size_t errlen)
{
	jsmn_parser p;
	jsmn_init(&p);
	int n = jsmn_parse(&p, s, len, NULL, 0);
	if (n == 0)
		return fail(err, errlen, "not a JSON object");
	if (n < 0)
		return fail(err, errlen, "malformed JSON near byte %u", p.pos);
	d->tok = xcalloc((size_t)n, sizeof *d->tok);
	jsmn_init(&p);
	d->ntok = jsmn_parse(&p, s, len, d->tok, (unsigned)n);
	if (d->ntok <= 0)   /* only the real parse's verdict counts */
		return fail(err, errlen, "malformed JSON near byte %d", (int)p.pos);
	return 0;
}

static int validate(json_doc *d, const char *s, size_t len, char *err, size_t errlen)
{
	d->next = xcalloc((size_t)d->ntok, sizeof *d->next);
	d->soff = xcalloc((size_t)d->ntok, sizeof *d->soff);
	if (link_tokens(d) < 0)
		return fail(err, errlen, "malformed JSON");
	const jsmntok_t *root = &d->tok[0];
	if (root->type != JSMN_OBJECT || !gap_ok(s, 0, root->start, 0))
		return fail(err, errlen, "not a JSON object");
	if (d->next[0] != d->ntok || !gap_ok(s, root->end, (int)len, 0))
		return fail(err, errlen, "trailing data after the JSON object at byte %d", root->end);
	for (int i = 0; i < d->ntok; i++) {
		const jsmntok_t *t = &d->tok[i];
		if (t->type == JSMN_STRING) {
			d->soff[i] = d->arena.len;
			if (unescape(d, s, t, err, errlen) < 0)
				return -1;
		} else if (t->type == JSMN_PRIMITIVE) {
			if (!primitive_ok(s + t->start, (size_t)(t->end - t->start)))
				return fail(err, errlen, "bad value in JSON at byte %d", t->start);
			d->soff[i] = d->arena.len;
			strbuf_add(&d->arena, s + t->start, (size_t)(t->end - t->start));
			strbuf_addc(&d->arena, '\0');
		}
	}
	/* keys are unescaped now, so duplicates compare by value */
	for (int i = 0; i < d->ntok; i++) {
		const jsmntok_t *t = &d->tok[i];
		if ((t->type == JSMN_OBJECT || t->type == JSMN_ARRAY) &&
		    check_container(d, s, i, err, errlen) < 0)
			return -1;
	}
	return 0;
}

json_doc *json_parse(const char *s, size_t len, char *err, size_t errlen)
{
	if (len >= INT_MAX / 2) {   /* jsmn keeps offsets in int */
		snprintf(err, errlen, "JSON text too large");
		return NULL;
	}
	json_doc *d = xcalloc(1, sizeof *d);
	if (tokenize(d, s, len, err, errlen) < 0 || validate(d, s, len, err, errlen) < 0) {
		json_free(d);
		return NULL;
	}
	return d;
}

void json_free(json_doc *d)
{
	if (!d)
		return;
	free(d->tok);
	free(d->next);
	free(d->soff);
	strbuf_free(&d->arena);
	free(d);
}

/* ---- access ---- */

static bool valid_tok(const json_doc *d, int t)
{
	return d && t >= 0 && t < d->ntok;
}

int json_root(const json_doc *d)
{
	return d ? 0 : -1;
}

enum json_type json_type(const json_doc *d, int tok)
{
	if (!valid_tok(d, tok))
		return JSON_NONE;
	switch (d->tok[tok].type) {
	case JSMN_OBJECT: return JSON_OBJECT;
	case JSMN_ARRAY: return JSON_ARRAY;
	case JSMN_STRING: return JSON_STRING;
	case JSMN_PRIMITIVE: return JSON_PRIMITIVE;
	default: return JSON_NONE;
	}
}

const char *json_string(const json_doc *d, int tok)
{
	if (json_type(d, tok) != JSON_STRING)
		return NULL;
	return d->arena.buf + d->soff[tok];
}

int json_get(const json_doc *d, int obj, const char *key)
{
	if (json_type(d, obj) != JSON_OBJECT)
		return -1;
	for (int k = 0, j = obj + 1; k < d->tok[obj].size; k++, j = d->next[j])
		if (strcmp(json_string(d, j), key) == 0)
			return j + 1;
	return -1;
}

const char *json_str(const json_doc *d, int obj, const char *key)
{
	return json_string(d, json_get(d, obj, key));
}

bool json_u64(const json_doc *d, int obj, const char *key, uint64_t *out)
{
	int t = json_get(d, obj, key);
	if (json_type(d, t) != JSON_PRIMITIVE)
		return false;
	const char *p = d->arena.buf + d->soff[t];
	if (p[0] < '0' || p[0] > '9' || (p[0] == '0' && p[1]))
		return false;
	uint64_t v = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		unsigned digit = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	*out = v;
	return true;
}

bool json_bool(const json_doc *d, int obj, const char *key, bool *out)
{
	int t = json_get(d, obj, key);
	if (json_type(d, t) != JSON_PRIMITIVE)
		return false;
	const char *p = d->arena.buf + d->soff[t];
	if (strcmp(p, "true") != 0 && strcmp(p, "false") != 0)
		return false;
	*out = p[0] == 't';
	return true;
}

size_t json_array_len(const json_doc *d, int arr)
{
	return json_type(d, arr) == JSON_ARRAY ? (size_t)d->tok[arr].size : 0;
}

int json_first(const json_doc *d, int arr)
{
	return json_array_len(d, arr) ? arr + 1 : -1;
}

int json_next(const json_doc *d, int arr, int elem)
{
	if (json_type(d, arr) != JSON_ARRAY || elem <= arr || elem >= d->next[arr])
		return -1;
	int n = d->next[elem];
	return n < d->next[arr] ? n : -1;
}
