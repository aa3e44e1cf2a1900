/*
 * sqlfiles.h - the sql/NAME.sql files, compiled into every binary by
 * build-aux/sql2c.awk, so an installed command never reads SQL from disk.
 */
#ifndef TP_SQLFILES_H
#define TP_SQLFILES_H

struct sql_file {
	const char *name;   /* "source.sql" */
	const char *text;
};

extern const struct sql_file sql_files[];

/* The text of sql/NAME, or NULL. */
const char *sql_file(const char *name);

/*
 * The text of sql/NAME with every "@schema@" replaced by schema_ident
 * (an already quoted identifier). malloc'd; NULL if no such file.
 */
char *sql_file_schema(const char *name, const char *schema_ident);

#endif
