/*
 * sqlfiles.c - look up the embedded sql/NAME.sql texts.
 */
#include <string.h>

#include "sqlfiles.h"
#include "strbuf.h"

const char *sql_file(const char *name)
{
	const struct sql_file *f;

	for (f = sql_files; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f->text;
	return NULL;
}

char *sql_file_schema(const char *name, const char *schema_ident)
{
	static const char mark[] = "@schema@";
	const char *text = sql_file(name), *p, *hit;
	strbuf sb = { 0 };

	if (!text)
		return NULL;
	for (p = text; (hit = strstr(p, mark)) != NULL; p = hit + sizeof(mark) - 1) {
		strbuf_add(&sb, p, (size_t)(hit - p));
		strbuf_adds(&sb, schema_ident);
	}
	strbuf_adds(&sb, p);
	return strbuf_detach(&sb);
}
