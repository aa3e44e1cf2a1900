/*
 * install.c - tp-install's work: run the SQL files, keep the capture
 * triggers exactly on the tables the targets match, and remove it all on
 * --uninstall.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "ddl.h"
#include "install.h"
#include "log.h"
#include "sqlfiles.h"
#include "strbuf.h"
#include "tp.h"

/* Don't queue behind a long transaction while blocking the application. */
#define INSTALL_LOCK_TIMEOUT "SELECT pg_catalog.set_config('lock_timeout', '5s', false)"

typedef struct installer {
	PGconn *conn;
	const tp_config *cfg;
	bool dry_run;
	char *schema;          /* quoted */
	char *capture_fn;      /* "schema".capture() as regprocedure text */
} installer;

int install_check_schema(const tp_config *cfg)
{
	const char *p = cfg->schema;

	if (!isalpha((unsigned char)*p) && *p != '_')
		goto bad;
	for (; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			goto bad;
	if (strlen(cfg->schema) > 63)
		goto bad;
	return TP_OK;
bad:
	log_error("%s: [node] schema: \"%s\" must be a plain identifier (letters, digits, _)",
		  cfg->path, cfg->schema);
	return TP_ECONFIG;
}

/* Run (or print) one statement with parameters. */
static int step(installer *in, const char *what, const char *sql,
		int nparams, const char *const *params)
{
	if (in->dry_run) {
		int i;

		printf("%s;\n", sql);
		for (i = 0; i < nparams; i++)
			printf("-- $%d = %s\n", i + 1, params[i] ? params[i] : "NULL");
		return TP_OK;
	}
	log_debug("%s", what);
	return db_execp(in->conn, what, sql, nparams, params);
}

/* Run (or print) one embedded SQL file as a single transaction. */
static int step_file(installer *in, const char *name)
{
	char *sql = sql_file_schema(name, in->schema);
	char what[128];
	int rc = TP_OK;
	PGresult *res;

	if (in->dry_run) {
		printf("-- sql/%s\n%s\n", name, sql);
		free(sql);
		return TP_OK;
	}
	snprintf(what, sizeof(what), "running sql/%s", name);
	log_debug("%s", what);
	res = PQexec(in->conn, sql);       /* a multi-statement script: one transaction */
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		rc = db_report(in->conn, res, what);
	PQclear(res);
	free(sql);
	return rc;
}

static int record_version(installer *in, const char *component)
{
	char sql[512], ver[16];
	const char *params[2] = { component, ver };

	snprintf(ver, sizeof(ver), "%d", INSTALL_VERSION);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s.version (component, version) VALUES ($1, $2)"
		 " ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version,"
		 " installed = pg_catalog.now()", in->schema);
	return step(in, "recording the installed version", sql, 2, params);
}

/* Refuse to downgrade objects a newer tp-install made. */
static int check_installed_version(installer *in)
{
	const char *params[1] = { in->cfg->schema };
	char sql[512];
	int rc, i;
	PGresult *res = db_query(in->conn, "reading the catalog",
		"SELECT pg_catalog.to_regclass(pg_catalog.quote_ident($1) || '.version') IS NOT NULL",
		1, params, &rc);

	if (!res)
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		PQclear(res);
		return TP_OK;
	}
	PQclear(res);
	snprintf(sql, sizeof(sql), "SELECT component, version FROM %s.version", in->schema);
	res = db_query(in->conn, "reading the installed version", sql, 0, NULL, &rc);
	if (!res)
		return rc;
	for (i = 0; i < PQntuples(res); i++) {
		if (atoi(PQgetvalue(res, i, 1)) > INSTALL_VERSION) {
			log_error("schema %s: %s objects are version %s, newer than this tp-install (%d)",
				  in->schema, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
				  INSTALL_VERSION);
			rc = TP_ECONFIG;
		}
	}
	PQclear(res);
	return rc;
}

/*
 * Add one target's position row; its stream starts now. With schema
 * changes tracked, the catalog description as of that same snapshot goes
 * with it (REPEATABLE READ: pg_current_snapshot() is the snapshot the
 * description is read in), so the first delta diffs against it.
 */
static int add_target(installer *in, const tp_target *t, const char *sql)
{
	const char *params[1] = { t->name };
	PGresult *res;
	int rc;

	if (in->dry_run || in->cfg->ddl == TP_DDL_OFF)
		return step(in, "adding a target", sql, 1, params);
	rc = db_exec(in->conn, "starting a transaction", "BEGIN ISOLATION LEVEL REPEATABLE READ");
	if (rc != TP_OK)
		return rc;
	res = db_query(in->conn, "adding a target", sql, 1, params, &rc);
	if (res && PQntuples(res) == 1)
		rc = ddl_baseline(in->conn, in->cfg, t, in->schema);
	PQclear(res);
	return tp_exit_worse(rc, db_exec(in->conn, "ending the transaction",
					 rc == TP_OK ? "COMMIT" : "ROLLBACK"));
}

static int add_targets(installer *in)
{
	char sql[512];
	size_t i;
	int rc = TP_OK;

	snprintf(sql, sizeof(sql),
		 "INSERT INTO %s.target (name, last_snap) VALUES ($1, pg_catalog.pg_current_snapshot())"
		 " ON CONFLICT (name) DO NOTHING RETURNING name", in->schema);
	for (i = 0; i < in->cfg->ntargets && rc == TP_OK; i++)
		rc = add_target(in, &in->cfg->targets[i], sql);
	return rc;
}

static bool matched_by_any_target(const tp_config *cfg, const char *schema, const char *table)
{
	size_t i;

	for (i = 0; i < cfg->ntargets; i++)
		if (target_matches(&cfg->targets[i], schema, table))
			return true;
	return false;
}

/*
 * The user tables, whether each has a primary key, and which of our two
 * triggers it carries. Partitions are left out: the trigger on their
 * partitioned parent is cloned onto them.
 */
static PGresult *list_tables(installer *in, int *rc)
{
	const char *params[2] = { in->capture_fn, in->cfg->schema };

	return db_query(in->conn, "listing tables",
		"SELECT n.nspname, c.relname,"
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_index i"
		"          WHERE i.indrelid = c.oid AND i.indisprimary),"
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid"
		"          AND t.tgfoid = pg_catalog.to_regprocedure($1) AND (t.tgtype & 1) = 1),"
		"  EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid"
		"          AND t.tgfoid = pg_catalog.to_regprocedure($1) AND (t.tgtype & 1) = 0)"
		" FROM pg_catalog.pg_class c"
		" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
		" WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
		"   AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast', $2])"
		"   AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
		" ORDER BY 1, 2", 2, params, rc);
}

/* Matched tables without a primary key cannot be replayed by key: refuse. */
static int check_keys(installer *in, PGresult *tables)
{
	int i, bad = 0;

	for (i = 0; i < PQntuples(tables); i++) {
		const char *s = PQgetvalue(tables, i, 0), *t = PQgetvalue(tables, i, 1);

		if (matched_by_any_target(in->cfg, s, t) && *PQgetvalue(tables, i, 2) != 't') {
			log_error("table %s.%s has no primary key and cannot be replicated", s, t);
			bad++;
		}
	}
	if (bad) {
		log_hint("add a primary key, or leave the table out with `exclude =` in %s",
			 in->cfg->path);
		return TP_ECONFIG;
	}
	return TP_OK;
}

static int trigger_sql(installer *in, const char *schema, const char *table,
		       bool create, bool row_level)
{
	char *rel = db_qualified(in->conn, schema, table);
	strbuf name = { 0 }, sql = { 0 };
	char *qname;
	char what[64];
	int rc;

	strbuf_addf(&name, "%s_%s", in->cfg->schema, row_level ? "capture" : "truncate");
	qname = db_ident(in->conn, name.buf);
	if (!create)
		strbuf_addf(&sql, "DROP TRIGGER IF EXISTS %s ON %s", qname, rel);
	else if (row_level)
		strbuf_addf(&sql, "CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s"
			    " FOR EACH ROW EXECUTE FUNCTION %s.capture()", qname, rel, in->schema);
	else
		strbuf_addf(&sql, "CREATE TRIGGER %s AFTER TRUNCATE ON %s"
			    " FOR EACH STATEMENT EXECUTE FUNCTION %s.capture()", qname, rel, in->schema);
	snprintf(what, sizeof(what), "%s a trigger", create ? "creating" : "dropping");
	log_info("%s %s trigger on %s", create ? "creating" : "dropping",
		 row_level ? "capture" : "truncate", rel);
	rc = step(in, what, sql.buf, 0, NULL);
	free(rel);
	free(qname);
	strbuf_free(&name);
	strbuf_free(&sql);
	return rc;
}

/* Add missing triggers to matched tables; drop ours from the others. */
static int sync_triggers(installer *in, PGresult *tables)
{
	int i, rc = TP_OK;

	for (i = 0; i < PQntuples(tables) && rc == TP_OK; i++) {
		const char *s = PQgetvalue(tables, i, 0), *t = PQgetvalue(tables, i, 1);
		bool want = matched_by_any_target(in->cfg, s, t);
		bool has_row = *PQgetvalue(tables, i, 3) == 't';
		bool has_stmt = *PQgetvalue(tables, i, 4) == 't';

		if (want != has_row)
			rc = trigger_sql(in, s, t, want, true);
		if (rc == TP_OK && want != has_stmt)
			rc = trigger_sql(in, s, t, want, false);
	}
	return rc;
}

/*
 * tp-batch, tp-ddlscan: give newly matched tables their triggers, each in
 * its own short transaction. Best effort: a table that cannot get one now
 * (locked, not ours, no key) is left for a later run and not replicated
 * until then; the run goes on.
 */
static void attach_new(installer *in, PGresult *tables)
{
	for (int i = 0; i < PQntuples(tables); i++) {
		const char *s = PQgetvalue(tables, i, 0), *t = PQgetvalue(tables, i, 1);
		bool has_row = *PQgetvalue(tables, i, 3) == 't';
		bool has_stmt = *PQgetvalue(tables, i, 4) == 't';

		if (!matched_by_any_target(in->cfg, s, t) || (has_row && has_stmt))
			continue;
		if (*PQgetvalue(tables, i, 2) != 't') {
			log_warn("table %s.%s has no primary key: not replicated until it has one", s, t);
			continue;
		}
		if ((!has_stmt && trigger_sql(in, s, t, true, false) != TP_OK) ||
		    (!has_row && trigger_sql(in, s, t, true, true) != TP_OK))
			log_warn("table %s.%s: no capture trigger yet; trying again next run", s, t);
	}
}

/* ---- ddl = event-triggers (sql/ddlevent.sql) ---- */

static bool event_mode(const installer *in)
{
	return in->cfg->ddl == TP_DDL_EVENT_TRIGGERS && in->cfg->ntargets > 0;
}

/*
 * May this role create event triggers? A superuser may; on managed
 * services the providers' admin roles may (RDS, Azure, Cloud SQL).
 */
static int check_event_rights(installer *in)
{
	PGresult *res;
	int rc;

	if (in->dry_run)
		return TP_OK;
	res = db_query(in->conn, "checking the right to create event triggers",
		"SELECT r.rolsuper OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles a"
		"  WHERE a.rolname IN ('rds_superuser', 'azure_pg_admin', 'cloudsqlsuperuser')"
		"    AND pg_catalog.pg_has_role(a.oid, 'MEMBER'))"
		" FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER", 0, NULL, &rc);
	if (!res)
		return rc;
	if (PQntuples(res) != 1 || *PQgetvalue(res, 0, 0) != 't') {
		log_error("%s: ddl = event-triggers: role %s may not create event triggers",
			  in->cfg->path, PQuser(in->conn));
		log_hint("run tp-install as a superuser (or rds_superuser, azure_pg_admin,"
			 " cloudsqlsuperuser), or set ddl = diff, which needs no such right");
		rc = TP_ECONFIG;
	}
	PQclear(res);
	return rc;
}

/* Each target's globs as regular expressions, for the event trigger. */
static int sync_globs(installer *in)
{
	strbuf sql = { 0 };
	int rc;

	strbuf_addf(&sql, "DELETE FROM %s.ddl_glob", in->schema);
	rc = step(in, "clearing the table globs", sql.buf, 0, NULL);
	strbuf_reset(&sql);
	strbuf_addf(&sql, "INSERT INTO %s.ddl_glob (target, exclude, schema_re, table_re)"
		    " VALUES ($1, $2, $3, $4)", in->schema);
	for (size_t i = 0; i < in->cfg->ntargets && rc == TP_OK; i++) {
		const tp_target *t = &in->cfg->targets[i];

		for (size_t g = 0; g < t->ntables + t->nexclude && rc == TP_OK; g++) {
			bool ex = g >= t->ntables;
			char *sre, *tre;
			const char *params[4] = { t->name, ex ? "true" : "false" };

			if (!glob_regex(ex ? t->exclude[g - t->ntables] : t->tables[g], &sre, &tre))
				continue;       /* config_load refuses these */
			params[2] = sre;
			params[3] = tre;
			rc = step(in, "recording a table glob", sql.buf, 4, params);
			free(sre);
			free(tre);
		}
	}
	strbuf_free(&sql);
	return rc;
}

/* Our event triggers: name and event, one row each. */
static PGresult *list_event_triggers(installer *in, int *rc)
{
	const char *params[1] = { in->schema };

	return db_query(in->conn, "listing event triggers",
		"SELECT e.evtname, e.evtevent FROM pg_catalog.pg_event_trigger e"
		" JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid"
		" WHERE p.pronamespace = pg_catalog.to_regnamespace($1) ORDER BY 1", 1, params, rc);
}

/* Create ours (want) or drop them (not want). */
static int sync_event_triggers(installer *in, bool want)
{
	static const char *const ev[2][2] = { { "ddl_end", "ddl_command_end" },
					      { "ddl_drop", "sql_drop" } };
	PGresult *have = NULL;
	strbuf name = { 0 }, sql = { 0 };
	int rc = TP_OK;

	if (!in->dry_run && !(have = list_event_triggers(in, &rc)))
		return rc;
	for (int i = 0; have && !want && i < PQntuples(have) && rc == TP_OK; i++) {
		char *q = db_ident(in->conn, PQgetvalue(have, i, 0));
		strbuf_reset(&sql);
		strbuf_addf(&sql, "DROP EVENT TRIGGER %s", q);
		log_info("dropping event trigger %s", q);
		rc = step(in, "dropping an event trigger", sql.buf, 0, NULL);
		free(q);
	}
	for (int i = 0; want && i < 2 && rc == TP_OK; i++) {
		bool exists = false;
		char *q;

		strbuf_reset(&name);
		strbuf_addf(&name, "%s_%s", in->cfg->schema, ev[i][0]);
		for (int j = 0; have && j < PQntuples(have); j++)
			exists = exists || strcmp(PQgetvalue(have, j, 0), name.buf) == 0;
		if (exists)
			continue;
		q = db_ident(in->conn, name.buf);
		strbuf_reset(&sql);
		strbuf_addf(&sql, "CREATE EVENT TRIGGER %s ON %s EXECUTE FUNCTION %s.%s()",
			    q, ev[i][1], in->schema, ev[i][0]);
		log_info("creating event trigger %s", q);
		rc = step(in, "creating an event trigger", sql.buf, 0, NULL);
		free(q);
	}
	PQclear(have);
	strbuf_free(&name);
	strbuf_free(&sql);
	return rc;
}

static int install_source(installer *in, PGresult *tables)
{
	int rc = step_file(in, "source.sql");

	if (rc == TP_OK)
		rc = step_file(in, "ddl.sql");
	if (rc == TP_OK && event_mode(in))
		rc = step_file(in, "ddlevent.sql");

	if (rc == TP_OK)
		rc = record_version(in, "source");
	/* Triggers before positions: a target's stream starts once capture runs. */
	if (rc == TP_OK)
		rc = sync_triggers(in, tables);
	if (rc == TP_OK)
		rc = add_targets(in);
	/* last: the event triggers take over from a complete install */
	if (rc == TP_OK && event_mode(in))
		rc = sync_globs(in);
	if (rc == TP_OK)
		rc = sync_event_triggers(in, event_mode(in));
	return rc;
}

static int installer_init(installer *in, PGconn *conn, const tp_config *cfg, bool dry_run)
{
	strbuf fn = { 0 };

	memset(in, 0, sizeof(*in));
	in->conn = conn;
	in->cfg = cfg;
	in->dry_run = dry_run;
	if (install_check_schema(cfg) != TP_OK)
		return TP_ECONFIG;
	in->schema = db_ident(conn, cfg->schema);
	strbuf_addf(&fn, "%s.capture()", in->schema);
	in->capture_fn = strbuf_detach(&fn);
	/* tp-install's own changes are not schema changes to replicate */
	if (!dry_run && db_exec(conn, "marking the session",
				"SELECT pg_catalog.set_config('teleport.in_ddl', 'on', false)") != TP_OK)
		return TP_EUNAVAIL;
	return db_exec(conn, "setting lock_timeout", INSTALL_LOCK_TIMEOUT);
}

static void installer_done(installer *in)
{
	free(in->schema);
	free(in->capture_fn);
}

int install_capture_new(PGconn *conn, const tp_config *cfg)
{
	installer in;
	PGresult *tables = NULL, *res;
	const char *params[1];
	int rc = installer_init(&in, conn, cfg, false);

	params[0] = in.capture_fn;
	res = rc == TP_OK ? db_query(conn, "looking for the capture function",
				     "SELECT pg_catalog.to_regprocedure($1) IS NOT NULL",
				     1, params, &rc) : NULL;
	/* not installed: the plan says so with a hint */
	if (res && *PQgetvalue(res, 0, 0) == 't' && (tables = list_tables(&in, &rc)))
		attach_new(&in, tables);
	PQclear(res);
	PQclear(tables);
	installer_done(&in);
	return tp_exit_worse(rc, db_exec(conn, "resetting lock_timeout", "RESET lock_timeout"));
}

int install_run(PGconn *conn, const tp_config *cfg, bool dry_run)
{
	installer in;
	PGresult *tables = NULL;
	int rc = installer_init(&in, conn, cfg, dry_run);

	if (rc == TP_OK)
		rc = check_installed_version(&in);
	if (rc == TP_OK && event_mode(&in))
		rc = check_event_rights(&in);
	/* Refuse keyless tables before changing anything. */
	if (rc == TP_OK && cfg->ntargets > 0 && (tables = list_tables(&in, &rc)) != NULL)
		rc = check_keys(&in, tables);
	if (rc == TP_OK)
		rc = step_file(&in, "common.sql");
	if (rc == TP_OK && tables)
		rc = install_source(&in, tables);
	if (rc == TP_OK && cfg->nsources > 0) {
		rc = step_file(&in, "target.sql");
		if (rc == TP_OK)
			rc = record_version(&in, "target");
	}
	PQclear(tables);
	installer_done(&in);
	return rc;
}

/*
 * Drop our triggers and objects in one transaction; sql/uninstall.sql ends
 * with a DROP SCHEMA without CASCADE, so a foreign object in the schema
 * rolls everything back instead of being dropped with it.
 */
int install_remove(PGconn *conn, const tp_config *cfg, bool dry_run)
{
	installer in;
	PGresult *tables = NULL;
	int rc = installer_init(&in, conn, cfg, dry_run);
	int i;

	if (rc == TP_OK)
		tables = list_tables(&in, &rc);
	if (rc == TP_OK)
		rc = step(&in, "starting a transaction", "BEGIN", 0, NULL);
	if (rc == TP_OK)
		rc = sync_event_triggers(&in, false);
	for (i = 0; tables && i < PQntuples(tables) && rc == TP_OK; i++) {
		const char *s = PQgetvalue(tables, i, 0), *t = PQgetvalue(tables, i, 1);

		if (*PQgetvalue(tables, i, 3) == 't')
			rc = trigger_sql(&in, s, t, false, true);
		if (rc == TP_OK && *PQgetvalue(tables, i, 4) == 't')
			rc = trigger_sql(&in, s, t, false, false);
	}
	if (rc == TP_OK)
		rc = step_file(&in, "uninstall.sql");
	if (rc == TP_OK)
		rc = step(&in, "committing", "COMMIT", 0, NULL);
	else if (!dry_run)
		db_exec(conn, "rolling back", "ROLLBACK");
	if (rc != TP_OK && !dry_run)
		log_hint("nothing was removed; objects teleport did not create must leave schema %s first",
			 in.schema);
	PQclear(tables);
	installer_done(&in);
	return rc;
}
