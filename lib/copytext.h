/*
 * copytext.h - fields in PostgreSQL's COPY text format, and the text form
 * of a record (composite) value as record_out writes it.
 *
 * Row values travel as each column's text output, which round-trips every
 * type exactly; COPY text escaping makes them tab- and newline-safe.
 */
#ifndef TP_COPYTEXT_H
#define TP_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include "strbuf.h"

/* Append one field: "\N" for NULL (v == NULL), else v escaped (\\ \t \n \r \b \f \v). */
void copytext_field(strbuf *out, const char *v, size_t len);

/*
 * Split a line (no newline) into at most max fields, unescaping in place.
 * fields[i] points into line, NUL-terminated; lens[i] its length;
 * fields[i] is NULL for \N. line[len] must be writable (a NUL-terminated
 * line is). Returns the number of fields, or -1 when the line has more
 * than max fields or a bad escape (unknown, or decoding to a NUL byte).
 */
int copytext_split(char *line, size_t len, char **fields, size_t *lens, size_t max);

/*
 * Parse a record's text form "(a,,\"b c\")" into fields. *store is reset,
 * then receives the unescaped values, each followed by a NUL;
 * out[i].off/len locate them there; out[i].null is set for an empty
 * unquoted field (SQL NULL); "()" is one NULL field, as record_in reads
 * it for a one-column type. *out grows as needed
 * (realloc'd; *cap holds its capacity). Returns the field count or -1 if
 * the text is not a record.
 */
typedef struct record_field {
	size_t off;
	size_t len;
	bool null;
} record_field;
int record_parse(const char *text, size_t len, strbuf *store,
		 record_field **out, size_t *cap);

#endif
