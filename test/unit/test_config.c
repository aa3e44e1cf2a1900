/*
 * test_config.c - unit tests of lib/config.c: parsing, every kind of
 * error message, long lines, globs, durations and sizes, token files.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "strbuf.h"
#include "tap.h"

static char dir[] = "/tmp/tp-test-config-XXXXXX";
static char path[PATH_MAX];
static char err[1024];

static const char *write_file(const char *name, const char *text)
{
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	return path;
}

static tp_config *load(const char *text)
{
	err[0] = '\0';
	return config_load(write_file("tp.ini", text), err, sizeof err);
}

/* Expect text to be refused with "PATH" + suffix. */
static void refused(const char *text, const char *suffix, const char *what)
{
	strbuf want = { 0 };
	tp_config *c = load(text);
	ok(c == NULL, "refused: %s", what);
	strbuf_addf(&want, "%s%s", path, suffix);
	is_str(err, want.buf, "message: %s", what);
	strbuf_free(&want);
	config_free(c);
}

#define NODE "[node]\nname = n1\nconninfo = dbname=x\n"

static void test_good(void)
{
	tp_config *c = load(
		"; src.ini - every key\n"
		"[node]\n"
		"name      = billing             ; this node's name\n"
		"conninfo  = host=/run/postgresql dbname=billing user=teleport\n"
		"                                ; libpq conninfo or URI\n"
		"schema    = tp_objs\n"
		"spool     = /var/spool/tp\n"
		"ddl       = event-triggers\n"
		"compression = gzip\n"
		"retention = 3d\n"
		"max_batch_bytes = 2G\n"
		"\n"
		"[target replica]                ; one section per target\n"
		"tables    = public.*, sales.order_*   ; schema-qualified globs\n"
		"exclude   = public.tmp_*\n"
		"apply_schema = copy\n"
		"endpoint  = http://replica.internal:8089/p;q\n"
		"token_file = /etc/teleport/replica.token\n"
		"batch_max_events = 500\n"
		"batch_max_bytes = 1M\n"
		"# hash comment\n"
		"[target other]\n"
		"tables = a.b\n"
		"endpoint = dir:/mnt/share\n"
		"[source billing2]\n"
		"token_file = /etc/t\n"
		"[source s3]\n");
	if (!ok(c != NULL, "full config loads")) {
		diag("error: %s", err);
		return;
	}
	is_str(c->node_name, "billing", "name");
	is_str(c->conninfo, "host=/run/postgresql dbname=billing user=teleport", "conninfo");
	is_str(c->schema, "tp_objs", "schema");
	is_str(c->spool, "/var/spool/tp", "spool");
	is_int(c->ddl, TP_DDL_EVENT_TRIGGERS, "ddl");
	is_int(c->compression, TP_COMPRESS_GZIP, "compression");
	is_int(c->retention, 3 * 86400, "retention");
	is_int(c->max_batch_bytes, 2LL << 30, "max_batch_bytes");
	is_int((long long)c->ntargets, 2, "two targets");
	tp_target *t = config_target(c, "replica");
	if (ok(t != NULL, "config_target finds replica")) {
		is_int(t->line, 13, "target line is its header's");
		is_int((long long)t->ntables, 2, "two table globs");
		is_str(t->tables[0], "public.*", "first glob trimmed");
		is_str(t->tables[1], "sales.order_*", "second glob trimmed");
		is_int((long long)t->nexclude, 1, "one exclude");
		is_str(t->apply_schema, "copy", "apply_schema");
		is_str(t->endpoint, "http://replica.internal:8089/p;q", "';' in a URL stays");
		is_str(t->token_file, "/etc/teleport/replica.token", "token_file");
		is_int(t->batch_max_events, 500, "batch_max_events");
		is_int(t->batch_max_bytes, 1 << 20, "batch_max_bytes");
	}
	t = config_target(c, "other");
	if (ok(t != NULL, "second target")) {
		is_int(t->batch_max_events, 10000, "default batch_max_events");
		is_int(t->batch_max_bytes, 64 << 20, "default batch_max_bytes");
		ok(t->apply_schema == NULL && t->token_file == NULL && t->nexclude == 0,
		   "optional target keys default to none");
	}
	ok(config_target(c, "nope") == NULL, "unknown target is NULL");
	is_int((long long)c->nsources, 2, "two sources");
	tp_source *s = config_source(c, "billing2");
	ok(s && s->token_file && !strcmp(s->token_file, "/etc/t"), "source token_file");
	s = config_source(c, "s3");
	ok(s && !s->token_file && s->line == 27, "empty source section");
	config_free(c);
}

static void test_defaults(void)
{
	tp_config *c = load("[node]\nname=a\nconninfo=dbname=x\n");
	if (!ok(c != NULL, "minimal config loads")) {
		diag("error: %s", err);
		return;
	}
	is_str(c->schema, "teleport", "default schema");
	is_str(c->spool, "/var/spool/teleport", "default spool");
	is_int(c->ddl, TP_DDL_DIFF, "default ddl");
	is_int(c->compression, TP_COMPRESS_ZSTD, "default compression");
	is_int(c->retention, 7 * 86400, "default retention");
	is_int(c->max_batch_bytes, 1LL << 30, "default max_batch_bytes");
	ok(c->ntargets == 0 && c->nsources == 0, "no targets or sources");
	config_free(c);
}

static void test_errors(void)
{
	refused("[node]\nname = a\n", ":1: conninfo: missing in [node]", "missing conninfo");
	refused("[node]\nconninfo = x\n[target t]\nendpoint=dir:/x\n",
		":1: name: missing in [node]", "missing name");
	refused(NODE "[target t]\nendpoint = dir:/x\n", ":4: tables: missing in [target t]",
		"missing tables");
	refused(NODE "[target t]\ntables = a.b\n", ":4: endpoint: missing in [target t]",
		"missing endpoint");
	refused(NODE "[target t]\n", ":4: tables: missing in [target t]", "empty target section");
	refused("[target t]\ntables=a.b\nendpoint=dir:/x\n", ": [node]: section missing",
		"no node section");
	refused(NODE "colour = blue\n", ":4: colour: unknown key in [node]", "unknown key");
	refused(NODE "[target t]\ntables=a.b\nendpoint=dir:/x\nname=x\n",
		":7: name: unknown key in [target t]", "node key in target");
	refused(NODE "[nodes]\n", ":4: [nodes]: unknown section (want [node], [target NAME] "
		"or [source NAME])", "unknown section");
	refused("name = a\n" NODE, ":1: name: outside any section", "key before sections");
	refused(NODE "name = b\n", ":4: name: repeated (first set on line 2)", "repeated key");
	refused(NODE "  name = b\n", ":4: name: repeated (first set on line 2)",
		"indented line is a repeated key");
	refused(NODE "  more text\n", ":4: syntax error (want key = value, [section] or ; comment)",
		"indented continuation");
	refused(NODE "[node]\n", ":4: [node]: repeated section (first on line 1)", "two nodes");
	refused(NODE "[target t]\ntables=a.b\nendpoint=dir:/x\n[target t]\n",
		":7: [target t]: repeated section (first on line 4)", "duplicate target");
	refused(NODE "[source s]\n[source  s ]\n",
		":5: [source  s ]: repeated section (first on line 4)", "duplicate source");
	refused(NODE "[target]\n", ":4: [target]: \"\" is not a valid target name "
		"(1 to 63 of A-Z a-z 0-9 _ -)", "target without name");
	refused(NODE "[source a.b]\n", ":4: [source a.b]: \"a.b\" is not a valid source name "
		"(1 to 63 of A-Z a-z 0-9 _ -)", "bad source name");
	refused(NODE "[target t\n", ":4: bad section header (want [node], [target NAME] "
		"or [source NAME])", "unclosed section");
	refused("[node]\nname = a b\nconninfo=x\n", ":2: name: \"a b\" is not a valid name "
		"(1 to 63 of A-Z a-z 0-9 _ -)", "bad node name");
	refused("[node]\nname = 0123456789012345678901234567890123456789012345678901234567890123\n",
		":2: name: \"0123456789012345678901234567890123456789012345678901234567890123\" "
		"is not a valid name (1 to 63 of A-Z a-z 0-9 _ -)", "64-char name");
	refused(NODE "conninfo =\n", ":4: conninfo: repeated (first set on line 3)",
		"empty repeated conninfo");
	refused("[node]\nname=a\nconninfo =\n", ":3: conninfo: empty value", "empty conninfo");
	refused(NODE "ddl = triggers\n", ":4: ddl: \"triggers\" is not diff, event-triggers or off",
		"bad ddl");
	refused(NODE "compression = xz\n", ":4: compression: \"xz\" is not zstd, gzip or none",
		"bad compression");
	refused(NODE "retention = 7 days\n", ":4: retention: \"7 days\" is not a duration "
		"(like 90, 45s, 30m, 12h, 7d, 2w)", "bad retention");
	refused(NODE "max_batch_bytes = 0\n", ":4: max_batch_bytes: \"0\" is not a positive size "
		"(like 512k, 64M, 1G)", "zero max_batch_bytes");
	refused(NODE "spool = spool\n", ":4: spool: \"spool\" is not an absolute path",
		"relative spool");
	refused(NODE "schema = \n", ":4: schema: must be 1 to 63 bytes", "empty schema");
	refused(NODE "[target t]\ntables=a.b\nendpoint=ftp://x\n",
		":6: endpoint: \"ftp://x\" is not http://..., https://... or dir:/absolute/path",
		"bad endpoint scheme");
	refused(NODE "[target t]\ntables=a.b\nendpoint=dir:rel\n",
		":6: endpoint: \"dir:rel\" is not http://..., https://... or dir:/absolute/path",
		"relative dir endpoint");
	refused(NODE "[target t]\ntables=a.b\nendpoint=http://\n",
		":6: endpoint: \"http://\" is not http://..., https://... or dir:/absolute/path",
		"empty http endpoint");
	refused(NODE "[target t]\ntables=a.b\nendpoint=dir:/x\nbatch_max_events=-5\n",
		":7: batch_max_events: \"-5\" is not a positive whole number", "negative events");
	refused(NODE "[target t]\ntables=a.b\nendpoint=dir:/x\nbatch_max_events=10k\n",
		":7: batch_max_events: \"10k\" is not a positive whole number", "events with unit");
	refused(NODE "[target t]\ntables=a.b\nendpoint=dir:/x\nbatch_max_bytes=lots\n",
		":7: batch_max_bytes: \"lots\" is not a positive size (like 512k, 64M, 1G)",
		"bad batch_max_bytes");
	refused(NODE "[target t]\ntables = public\n", ":5: tables: \"public\" is not "
		"schema.table (no '.')", "glob without dot");
	refused(NODE "[target t]\ntables = a.b, a.b.c\n", ":5: tables: \"a.b.c\" is not "
		"schema.table (more than one '.')", "glob with two dots");
	refused(NODE "[target t]\ntables = a.b,,c.d\n", ":5: tables: empty pattern in list",
		"empty list item");
	refused(NODE "[target t]\ntables = a.b,\n", ":5: tables: empty pattern in list",
		"trailing comma");
	refused(NODE "[target t]\ntables = .b\n", ":5: tables: \".b\" has an empty schema "
		"or table part", "empty schema part");
	refused(NODE "[target t]\ntables = a.\"b\n", ":5: tables: unterminated quote in "
		"\"a.\"b\"", "open quote");
	refused(NODE "[target t]\ntables = a.b\nexclude = x\n", ":6: exclude: \"x\" is not "
		"schema.table (no '.')", "bad exclude");
	refused(NODE "just words\n", ":4: syntax error (want key = value, [section] or ; comment)",
		"syntax error");

	char want[PATH_MAX + 64];
	err[0] = '\0';
	snprintf(want, sizeof want, "%s/missing.ini", dir);
	ok(config_load(want, err, sizeof err) == NULL, "missing file refused");
	snprintf(want, sizeof want, "%s/missing.ini: cannot open: No such file or directory", dir);
	is_str(err, want, "missing file message");
	ok(config_load(dir, err, sizeof err) == NULL, "a directory is refused");
	snprintf(want, sizeof want, "%s: cannot read: Is a directory", dir);
	is_str(err, want, "directory message");
}

/* Lines far beyond inih's default 200 bytes work; beyond our limit they fail. */
static void test_long_lines(void)
{
	strbuf sb = { 0 };
	strbuf_adds(&sb, "[node]\nname = a\nconninfo = host=/tmp dbname=");
	for (int i = 0; i < 1000; i++)
		strbuf_addc(&sb, 'x');
	strbuf_adds(&sb, "\n[target t]\ntables = ");
	for (int i = 0; i < 100; i++)
		strbuf_addf(&sb, "%sschema_%d.table_%d_*", i ? ", " : "", i, i);
	strbuf_adds(&sb, "\nendpoint = dir:/x\n");
	tp_config *c = load(sb.buf);
	if (!ok(c != NULL, "long lines load"))
		diag("error: %s", err);
	if (c) {
		is_int((long long)strlen(c->conninfo), 17 + 1000, "1000-byte conninfo is whole");
		is_int((long long)c->targets[0].ntables, 100, "100 globs on one line");
		is_str(c->targets[0].tables[99], "schema_99.table_99_*", "last glob whole");
	}
	config_free(c);

	strbuf_reset(&sb);
	strbuf_adds(&sb, "[node]\nname = a\nconninfo = ");
	for (int i = 0; i < 8179; i++)
		strbuf_addc(&sb, 'y');
	strbuf_adds(&sb, "\n");
	c = load(sb.buf);
	if (!ok(c && strlen(c->conninfo) == 8179, "8190-byte line loads"))
		diag("error: %s", err);
	config_free(c);

	strbuf_reset(&sb);
	strbuf_adds(&sb, "[node]\nname = a\nconninfo = ");
	for (int i = 0; i < 9000; i++)
		strbuf_addc(&sb, 'z');
	strbuf_adds(&sb, "\nbogus = 1\n");
	refused(sb.buf, ":3: line longer than 8190 bytes", "overlong line");

	/* No newline at the end of the file: the last line still counts. */
	refused(NODE "ddl = x", ":4: ddl: \"x\" is not diff, event-triggers or off",
		"last line without newline");
	/* CRLF and a byte order mark are fine. */
	c = load("\xEF\xBB\xBF[node]\r\nname = a\r\nconninfo = x\r\n");
	if (!ok(c && !strcmp(c->conninfo, "x"), "BOM and CRLF"))
		diag("error: %s", err);
	config_free(c);
	strbuf_free(&sb);
}

static bool matches(const char *tables, const char *exclude, const char *s, const char *t)
{
	char text[512];
	snprintf(text, sizeof text, NODE "[target t]\ntables = %s\n%s%s%sendpoint = dir:/x\n",
		 tables, exclude ? "exclude = " : "", exclude ? exclude : "", exclude ? "\n" : "");
	tp_config *c = load(text);
	if (!c) {
		diag("error: %s", err);
		return false;
	}
	bool m = target_matches(&c->targets[0], s, t);
	config_free(c);
	return m;
}

static void test_globs(void)
{
	ok(matches("public.*", NULL, "public", "orders"), "public.* matches public.orders");
	ok(!matches("public.*", NULL, "sales", "orders"), "public.* not sales.orders");
	ok(matches("public.*, sales.order_*", NULL, "sales", "order_2024"), "second glob");
	ok(!matches("public.*, sales.order_*", NULL, "sales", "orders"), "sales.orders no");
	ok(!matches("public.*", "public.tmp_*", "public", "tmp_x"), "excluded");
	ok(matches("public.*", "public.tmp_*", "public", "tmpx"), "not excluded");
	ok(matches("*.*", NULL, "Odd Schema", ".hidden"), "no FNM_PERIOD");
	ok(!matches("public.Orders", NULL, "public", "orders"), "case sensitive");
	ok(matches("s[0-9].t?", NULL, "s1", "tx"), "brackets and ?");
	ok(matches("public.a\\.b", NULL, "public", "a.b"), "backslash-quoted dot");
	ok(matches("public.\"a.b*\"", NULL, "public", "a.b*"), "double-quoted dot and star");
	ok(!matches("public.\"a.b*\"", NULL, "public", "a.bc"), "quoted star is literal");
	ok(matches("\"My Schema\".\"x,y\"", NULL, "My Schema", "x,y"), "quoted comma");
	ok(matches("p.\"say \"\"hi\"\"\"", NULL, "p", "say \"hi\""), "doubled quote");
	ok(matches("s.[.]x", NULL, "s", ".x"), "dot inside brackets");
	ok(matches("  a.b  ,c.d  ", NULL, "c", "d"), "items are trimmed");
}

static void test_units(void)
{
	is_int(parse_duration("90"), 90, "90");
	is_int(parse_duration("45s"), 45, "45s");
	is_int(parse_duration("30m"), 1800, "30m");
	is_int(parse_duration("12h"), 43200, "12h");
	is_int(parse_duration("7d"), 604800, "7d");
	is_int(parse_duration("2w"), 1209600, "2w");
	is_int(parse_duration("0"), 0, "0");
	is_int(parse_duration(""), -1, "empty");
	is_int(parse_duration("-1"), -1, "negative");
	is_int(parse_duration("7dd"), -1, "7dd");
	is_int(parse_duration("7y"), -1, "unknown unit");
	is_int(parse_duration(" 7d"), -1, "leading space");
	is_int(parse_duration("99999999999999999999"), -1, "overflow");
	is_int(parse_duration("9999999999999999d"), -1, "overflow by unit");
	is_int(parse_size("1000"), 1000, "1000");
	is_int(parse_size("512k"), 512 * 1024, "512k");
	is_int(parse_size("512K"), 512 * 1024, "512K");
	is_int(parse_size("64M"), 64 << 20, "64M");
	is_int(parse_size("64MB"), 64 << 20, "64MB");
	is_int(parse_size("64MiB"), 64 << 20, "64MiB");
	is_int(parse_size("1G"), 1 << 30, "1G");
	is_int(parse_size("2T"), 2LL << 40, "2T");
	is_int(parse_size("100B"), 100, "100B");
	is_int(parse_size("100iB"), -1, "100iB");
	is_int(parse_size("1.5G"), -1, "fraction");
	is_int(parse_size("G"), -1, "no number");
	is_int(parse_size("9999999999T"), -1, "overflow");
	ok(config_name_valid("a-B_9") && !config_name_valid("") && !config_name_valid("a.b") &&
	   !config_name_valid("a/b"), "config_name_valid");
}

static void test_path_and_token(void)
{
	unsetenv("TP_CONFIG");
	is_str(config_path("x.ini"), "x.ini", "flag wins");
	is_str(config_path(NULL), "/etc/teleport/tp.ini", "default path");
	setenv("TP_CONFIG", "/e.ini", 1);
	is_str(config_path(NULL), "/e.ini", "$TP_CONFIG");
	is_str(config_path("f.ini"), "f.ini", "flag beats $TP_CONFIG");
	setenv("TP_CONFIG", "", 1);
	is_str(config_path(NULL), "/etc/teleport/tp.ini", "empty $TP_CONFIG ignored");
	unsetenv("TP_CONFIG");

	char *tok = token_read(write_file("tok", "s3cret \n\n"), err, sizeof err);
	is_str(tok, "s3cret", "token, trailing whitespace dropped");
	free(tok);
	chmod(path, 0644);
	tok = token_read(path, err, sizeof err);
	is_str(tok, "s3cret", "a world-readable token is still read");
	free(tok);
	char want[PATH_MAX + 64];
	tok = token_read(write_file("empty", " \n"), err, sizeof err);
	snprintf(want, sizeof want, "%s: empty token", path);
	ok(tok == NULL, "empty token refused");
	is_str(err, want, "empty token message");
	snprintf(want, sizeof want, "%s/none", dir);
	tok = token_read(want, err, sizeof err);
	strcat(want, ": cannot open: No such file or directory");
	ok(tok == NULL, "missing token file");
	is_str(err, want, "missing token message");
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	test_good();
	test_defaults();
	test_errors();
	test_long_lines();
	test_globs();
	test_units();
	test_path_and_token();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		diag("could not remove %s", dir);
	return done_testing();
}
