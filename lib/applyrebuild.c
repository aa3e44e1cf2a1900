/*
 * applyrebuild.c - tp-load --rebuild-indexes on the target: inside the
 * load's transaction, right after its TRUNCATE, drop the loaded tables'
 * foreign keys and their indexes that back no constraint, and build them
 * again once every row is in. COPY into a table without them is faster,
 * and each foreign key is then checked once, in bulk, instead of per row.
 * Primary keys and unique constraints stay (other tables' foreign keys
 * may need them), and so do indexes that any foreign key uses. All in the
 * load's transaction: a failure leaves the target as it was.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_int.h"
#include "batch.h"
#include "db.h"
#include "log.h"
#include "tp.h"

/*
 * (drop, create, table, name) of each foreign key and then each index;
 * identifiers come quoted from the catalog (format %I, regclass output
 * under the session's empty search_path).
 */
static const char rebuild_sql[] =
	"SELECT pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', k.conrelid::pg_catalog.regclass,"
	"  k.conname),"
	" pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', k.conrelid::pg_catalog.regclass,"
	"  k.conname, pg_catalog.pg_get_constraintdef(k.oid)), k.conrelid::pg_catalog.regclass::text,"
	" k.conname::text, 1 AS ord"
	" FROM pg_catalog.pg_constraint k WHERE k.contype = 'f'"
	"  AND k.conrelid = ANY ($1::pg_catalog.regclass[])"
	" UNION ALL"
	" SELECT pg_catalog.format('DROP INDEX %I.%I', n.nspname, c.relname),"
	"  pg_catalog.regexp_replace(pg_catalog.pg_get_indexdef(i.indexrelid),"
	"   '^CREATE (UNIQUE )?INDEX ', 'CREATE \\1INDEX IF NOT EXISTS '),"
	"  NULL, NULL, 2"
	" FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
	" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	" WHERE i.indrelid = ANY ($1::pg_catalog.regclass[])"
	"  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid)"
	" ORDER BY 5";

static const char fkey_exists[] =
	"SELECT 1 FROM pg_catalog.pg_constraint"
	" WHERE conrelid = $1::pg_catalog.regclass AND conname = $2";

/* The loaded tables as a regclass[] literal. */
static void tables_array(const load_apply *la, strbuf *out)
{
	for (size_t i = 0; i < la->h->ntables; i++) {
		char *q = db_qualified(la->conn, la->h->tables[2 * i], la->h->tables[2 * i + 1]);
		db_array_add(out, q);
		free(q);
	}
	strbuf_adds(out, out->len ? "}" : "{}");
}

int rebuild_drop(load_apply *la, PGresult **saved)
{
	strbuf tables = { 0 };
	const char *params[1];
	int rc;

	tables_array(la, &tables);
	params[0] = tables.buf;
	*saved = db_query(la->conn, "reading the loaded tables' indexes", rebuild_sql, 1, params, &rc);
	strbuf_free(&tables);
	for (int i = 0; *saved && i < PQntuples(*saved) && rc == TP_OK; i++) {
		log_info("load %s from %s: %s", la->h->load, la->source, PQgetvalue(*saved, i, 0));
		rc = db_exec(la->conn, "dropping an index before the load", PQgetvalue(*saved, i, 0));
	}
	return rc;
}

int rebuild_create(load_apply *la, PGresult *saved)
{
	int rc = TP_OK;

	/* indexes first (ord 2 sorted last): a foreign key may use one */
	for (int i = PQntuples(saved) - 1; i >= 0 && rc == TP_OK; i--) {
		const char *params[2] = { PQgetvalue(saved, i, 2), PQgetvalue(saved, i, 3) };
		PGresult *res = NULL;

		/* a foreign key the load's schema part added again meanwhile stays */
		if (!PQgetisnull(saved, i, 2) &&
		    !(res = db_query(la->conn, "looking for a foreign key", fkey_exists, 2, params, &rc)))
			break;
		if (!res || PQntuples(res) == 0) {
			log_info("load %s from %s: %s", la->h->load, la->source, PQgetvalue(saved, i, 1));
			rc = db_exec(la->conn, "building an index after the load", PQgetvalue(saved, i, 1));
		}
		PQclear(res);
	}
	return rc;
}
