/*
 * copytext.c - COPY text fields and record_out text.
 *
 * Both formats are PostgreSQL's own, so values written by the server's
 * output functions come back byte for byte. Input is parsed strictly:
 * our writer never produces odd escapes, so anything odd means a damaged
 * or forged line, and refusing it beats guessing.
 */
#include <string.h>
#include "copytext.h"

/* The escape letter for a byte that COPY text must escape, or 0. */
static char escape_of(unsigned char c)
{
	switch (c) {
	case '\\': return '\\';
	case '\t': return 't';
	case '\n': return 'n';
	case '\r': return 'r';
	case '\b': return 'b';
	case '\f': return 'f';
	case '\v': return 'v';
	default: return 0;
	}
}

void copytext_field(strbuf *out, const char *v, size_t len)
{
	if (!v) {
		strbuf_add(out, "\\N", 2);
		return;
	}
	size_t run = 0;     /* start of the bytes not yet copied */
	for (size_t i = 0; i < len; i++) {
		char e = escape_of((unsigned char)v[i]);
		if (!e)
			continue;
		strbuf_add(out, v + run, i - run);
		char esc[2] = { '\\', e };
		strbuf_add(out, esc, 2);
		run = i + 1;
	}
	strbuf_add(out, v + run, len - run);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/*
 * Decode the escape at line[*i] (just after the backslash) as COPY does:
 * the letters above, octal \NNN (1-3 digits, masked to a byte like the
 * server does) and \xH or \xHH. Returns the byte, or -1: an unknown
 * escape, a backslash at the end, or a NUL, which no text value holds.
 */
static int unescape_at(const char *line, size_t len, size_t *i)
{
	if (*i >= len)
		return -1;
	char c = line[(*i)++];
	switch (c) {
	case '\\': return '\\';
	case 't': return '\t';
	case 'n': return '\n';
	case 'r': return '\r';
	case 'b': return '\b';
	case 'f': return '\f';
	case 'v': return '\v';
	}
	int v = 0;
	if (c >= '0' && c <= '7') {
		v = c - '0';
		for (int k = 0; k < 2 && *i < len && line[*i] >= '0' && line[*i] <= '7'; k++)
			v = v * 8 + (line[(*i)++] - '0');
		v &= 0377;
	} else if (c == 'x' && *i < len && hexval(line[*i]) >= 0) {
		v = hexval(line[(*i)++]);
		if (*i < len && hexval(line[*i]) >= 0)
			v = v * 16 + hexval(line[(*i)++]);
	} else {
		return -1;
	}
	return v ? v : -1;
}

/*
 * In place: the write position never passes the read position, so each
 * field is unescaped over itself and terminated where its tab was (the
 * last one at line[len], which a NUL-terminated line has room for).
 */
int copytext_split(char *line, size_t len, char **fields, size_t *lens, size_t max)
{
	size_t n = 0, i = 0;
	for (;;) {
		if (n == max)
			return -1;
		size_t start = i, w = i;
		bool isnull = false;
		if (len - i >= 2 && line[i] == '\\' && line[i + 1] == 'N' &&
		    (i + 2 == len || line[i + 2] == '\t')) {
			isnull = true;  /* \N counts only as a whole field */
			i += 2;
		}
		while (!isnull && i < len && line[i] != '\t') {
			if (line[i] != '\\') {
				line[w++] = line[i++];
				continue;
			}
			i++;
			int c = unescape_at(line, len, &i);
			if (c < 0)
				return -1;
			line[w++] = (char)c;
		}
		fields[n] = isnull ? NULL : line + start;
		lens[n] = isnull ? 0 : w - start;
		n++;
		bool more = i < len;    /* stopped at a tab */
		if (!isnull)
			line[w] = '\0';
		else if (more)
			line[i] = '\0';
		if (!more)
			return (int)n;
		i++;
	}
}

/* ---- record_out text ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * One field at text[*i], ended by an unquoted ',' or ')'. Quotes may
 * open and close anywhere (record_in allows a"b"c); inside them "" is a
 * quote; a backslash quotes the next byte in or out of quotes.
 * Returns 0, or -1 on unterminated text.
 */
static int record_field_parse(const char *text, size_t len, size_t *i,
			      strbuf *store, record_field *f)
{
	bool inq = false, quoted = false;
	f->off = store->len;
	while (*i < len) {
		char c = text[*i];
		if (!inq && (c == ',' || c == ')'))
			break;
		(*i)++;
		if (c == '\\') {
			if (*i >= len)
				return -1;
			strbuf_addc(store, text[(*i)++]);
		} else if (c == '"' && inq && *i < len && text[*i] == '"') {
			strbuf_addc(store, '"');
			(*i)++;
		} else if (c == '"') {
			inq = !inq;
			quoted = true;
		} else {
			strbuf_addc(store, c);
		}
	}
	if (inq || *i >= len)
		return -1;
	f->len = store->len - f->off;
	f->null = !quoted && f->len == 0;
	strbuf_addc(store, '\0');    /* each value usable as a C string too */
	return 0;
}

int record_parse(const char *text, size_t len, strbuf *store,
		 record_field **out, size_t *cap)
{
	size_t i = 0, n = 0;
	strbuf_reset(store);
	while (i < len && is_space(text[i]))
		i++;
	if (i >= len || text[i++] != '(')
		return -1;
	for (;;) {
		if (n == *cap) {
			*cap = *cap ? *cap * 2 : 8;
			*out = xrealloc(*out, *cap * sizeof **out);
		}
		if (record_field_parse(text, len, &i, store, &(*out)[n]) < 0)
			return -1;
		n++;
		if (text[i++] == ')')
			break;
	}
	while (i < len && is_space(text[i]))
		i++;
	return i == len ? (int)n : -1;
}
