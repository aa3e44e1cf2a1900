/*
 * status_out.c - tp-status's three renderings of one status: a table for
 * people, JSON for scripts, node_exporter textfile metrics.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "spool.h"
#include "status.h"
#include "strbuf.h"
#include "tp.h"

/* "42s", "7m05s", "3h20m", "2d04h": short, and exact enough to act on. */
static void fmt_age(double secs, char *buf, size_t len)
{
	long s = (long)secs;

	if (s < 60)
		snprintf(buf, len, "%lds", s);
	else if (s < 3600)
		snprintf(buf, len, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%ldh%02ldm", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%ldd%02ldh", s / 86400, s % 86400 / 3600);
}

static const char *iso(time_t t, char *buf, size_t len)
{
	tp_time_iso(t, buf, len);
	return *buf ? buf : "-";
}

/* ---- table -------------------------------------------------------------- */

static void table_targets(const status *st, FILE *out)
{
	char cut[32], lag[32];

	fprintf(out, "\n%-20s %10s %-20s %10s %10s %7s %10s %12s %9s\n", "TARGET", "LAST BATCH",
		"CUT AT", "WRITTEN", "SENT", "UNSENT", "BACKLOG", "BACKLOG B", "LAG");
	for (size_t i = 0; i < st->ntargets; i++) {
		const st_target *t = &st->targets[i];
		fmt_age(t->lag, lag, sizeof lag);
		fprintf(out, "%-20s %10" PRId64 " %-20s %10" PRId64 " %10" PRId64 " %7" PRIu64
			" %10" PRId64 " %12" PRId64 " %9s%s\n", t->name, t->last_seq,
			iso(t->last_cut, cut, sizeof cut), t->written, t->sent, t->unsent,
			t->backlog_events, t->backlog_bytes, lag,
			!t->configured ? "  (not in the config)" :
			!t->installed && st->db_up ? "  (not installed)" : "");
	}
}

/* Under a source's row: the batch it holds for a schema change, and why. */
static void table_ddl_wait(const st_source *s, FILE *out)
{
	char since[32], age[32];

	fmt_age(s->ddl_seconds, age, sizeof age);
	fprintf(out, "  %s: batch %" PRId64 " waits for a schema change since %s (%s): %s\n",
		s->name, s->ddl_waiting, iso(s->ddl_since, since, sizeof since),
		s->ddl_since ? age : "?", s->ddl_reason ? s->ddl_reason : s->ddl_sqlstate);
}

static void table_sources(const status *st, FILE *out)
{
	char at[32], lag[32], ddl[24];

	fprintf(out, "\n%-20s %10s %10s %-20s %8s %9s %10s\n", "SOURCE", "RECEIVED", "APPLIED",
		"APPLIED AT", "WAITING", "LAG", "DDL WAIT");
	for (size_t i = 0; i < st->nsources; i++) {
		const st_source *s = &st->sources[i];
		if (s->lag_known)
			fmt_age(s->lag, lag, sizeof lag);
		else
			snprintf(lag, sizeof lag, "?");
		if (s->ddl_waiting)
			snprintf(ddl, sizeof ddl, "%" PRId64, s->ddl_waiting);
		else
			snprintf(ddl, sizeof ddl, "-");
		fprintf(out, "%-20s %10" PRId64 " %10" PRId64 " %-20s %8" PRIu64 " %9s %10s\n",
			s->name, s->received, s->applied, iso(s->applied_at, at, sizeof at),
			s->waiting, lag, ddl);
		if (s->ddl_waiting)
			table_ddl_wait(s, out);
	}
}

static void table_commands(const status *st, FILE *out)
{
	char end[32], since[32];

	fprintf(out, "\n%-12s %-20s %4s  %s\n", "COMMAND", "LAST RUN", "EXIT", "ERROR / SUMMARY");
	for (size_t i = 0; i < st->ncmds; i++) {
		const outcome *o = &st->cmds[i];
		fprintf(out, "%-12s %-20s %4d  ", o->command, iso(o->end, end, sizeof end), o->exit);
		if (o->error)
			fprintf(out, "%s (since %s)\n", o->error, iso(o->error_since, since, sizeof since));
		else
			fprintf(out, "%s\n", o->summary ? o->summary : "");
	}
}

void status_print_table(const status *st, FILE *out)
{
	char now[32];

	fprintf(out, "node %s at %s: %s\n", st->cfg->node_name, iso(st->now, now, sizeof now),
		st->nproblems ? "UNHEALTHY" : "healthy");
	for (size_t i = 0; i < st->nproblems; i++)
		fprintf(out, "  problem: %s\n", st->problems[i]);
	if (st->ntargets)
		table_targets(st, out);
	if (st->nsources)
		table_sources(st, out);
	if (st->ncmds)
		table_commands(st, out);
}

/* ---- JSON --------------------------------------------------------------- */


static void j_str(strbuf *sb, const char *key, const char *s)
{
	strbuf_addf(sb, "\"%s\": ", key);
	if (s)
		json_add_strz(sb, s);
	else
		strbuf_adds(sb, "null");
}

static void json_target(strbuf *sb, const st_target *t)
{
	strbuf_addc(sb, '{');
	j_str(sb, "name", t->name);
	strbuf_addf(sb, ", \"configured\": %s, \"installed\": %s, \"last_batch\": {\"seq\": %" PRId64 ", ",
		    t->configured ? "true" : "false", t->installed ? "true" : "false", t->last_seq);
	json_add_time_member(sb, "created", t->last_cut);
	strbuf_addf(sb, "}, \"written\": %" PRId64 ", \"sent\": %" PRId64
		    ", \"unsent_batches\": %" PRIu64 ", \"unsent_bytes\": %" PRIu64 ", ",
		    t->written, t->sent, t->unsent, t->unsent_bytes);
	json_add_time_member(sb, "oldest_unsent", t->oldest_unsent);
	strbuf_addf(sb, ", \"backlog_events\": %" PRId64 ", \"backlog_bytes\": %" PRId64 ", ",
		    t->backlog_events, t->backlog_bytes);
	json_add_time_member(sb, "oldest_backlog", t->oldest_backlog);
	/* a target's schema waits are known on the target only (its sources[]) */
	strbuf_addf(sb, ", \"lag_seconds\": %.0f, \"ddl_waiting\": null}", t->lag);
}

static void json_source(strbuf *sb, const st_source *s)
{
	strbuf_addc(sb, '{');
	j_str(sb, "name", s->name);
	strbuf_addf(sb, ", \"received\": %" PRId64 ", \"applied\": %" PRId64 ", ",
		    s->received, s->applied);
	json_add_time_member(sb, "applied_at", s->applied_at);
	strbuf_addf(sb, ", \"waiting_batches\": %" PRIu64 ", \"lag_seconds\": ", s->waiting);
	if (s->lag_known)
		strbuf_addf(sb, "%.0f", s->lag);
	else
		strbuf_adds(sb, "null");
	strbuf_addf(sb, ", \"ddl_waiting\": %" PRId64 ", ", s->ddl_waiting);
	json_add_time_member(sb, "ddl_waiting_since", s->ddl_since);
	strbuf_addf(sb, ", \"ddl_waiting_seconds\": %.0f, ", s->ddl_seconds);
	j_str(sb, "ddl_waiting_sqlstate", s->ddl_waiting ? s->ddl_sqlstate : NULL);
	strbuf_adds(sb, ", ");
	j_str(sb, "ddl_waiting_reason", s->ddl_waiting ? s->ddl_reason : NULL);
	strbuf_adds(sb, "}");
}

static void json_command(strbuf *sb, const outcome *o)
{
	strbuf_addc(sb, '{');
	j_str(sb, "command", o->command);
	strbuf_adds(sb, ", ");
	json_add_time_member(sb, "start", o->start);
	strbuf_adds(sb, ", ");
	json_add_time_member(sb, "end", o->end);
	strbuf_addf(sb, ", \"exit\": %d, ", o->exit);
	j_str(sb, "summary", o->summary);
	strbuf_adds(sb, ", ");
	j_str(sb, "error", o->error);
	strbuf_adds(sb, ", ");
	json_add_time_member(sb, "error_since", o->error_since);
	strbuf_adds(sb, ", ");
	json_add_time_member(sb, "last_ok", o->last_ok);
	strbuf_adds(sb, "}");
}

void status_print_json(const status *st, FILE *out)
{
	strbuf sb = { 0 };

	strbuf_addc(&sb, '{');
	j_str(&sb, "node", st->cfg->node_name);
	strbuf_adds(&sb, ", ");
	json_add_time_member(&sb, "time", st->now);
	strbuf_addf(&sb, ", \"database_up\": %s, \"healthy\": %s, \"max_lag_seconds\": %ld,\n \"problems\": [",
		    st->db_up ? "true" : "false", st->nproblems ? "false" : "true", st->cfg->max_lag);
	for (size_t i = 0; i < st->nproblems; i++) {
		strbuf_adds(&sb, i ? ", " : "");
		json_add_strz(&sb, st->problems[i]);
	}
	strbuf_adds(&sb, "],\n \"targets\": [");
	for (size_t i = 0; i < st->ntargets; i++) {
		strbuf_adds(&sb, i ? ",\n  " : "\n  ");
		json_target(&sb, &st->targets[i]);
	}
	strbuf_adds(&sb, "],\n \"sources\": [");
	for (size_t i = 0; i < st->nsources; i++) {
		strbuf_adds(&sb, i ? ",\n  " : "\n  ");
		json_source(&sb, &st->sources[i]);
	}
	strbuf_adds(&sb, "],\n \"commands\": [");
	for (size_t i = 0; i < st->ncmds; i++) {
		strbuf_adds(&sb, i ? ",\n  " : "\n  ");
		json_command(&sb, &st->cmds[i]);
	}
	strbuf_adds(&sb, "]}\n");
	fwrite(sb.buf, 1, sb.len, out);
	strbuf_free(&sb);
}

/* ---- Prometheus textfile ------------------------------------------------ */

static const struct metric { const char *name, *help; } target_metrics[] = {
	{ "teleport_target_last_batch_seq", "Number of the last batch cut for the target." },
	{ "teleport_target_last_batch_timestamp_seconds", "When the last batch was cut." },
	{ "teleport_target_written_seq", "Highest batch whose file was written to the outbox." },
	{ "teleport_target_sent_seq", "Highest batch the target confirmed." },
	{ "teleport_target_unsent_batches", "Batch files waiting in the outbox." },
	{ "teleport_target_unsent_bytes", "Bytes of batch files waiting in the outbox." },
	{ "teleport_target_backlog_events", "Committed events not batched yet." },
	{ "teleport_target_backlog_bytes", "Captured bytes of the events not batched yet." },
	{ "teleport_target_lag_seconds", "Age of the oldest change not yet delivered." },
}, source_metrics[] = {
	{ "teleport_source_received_seq", "Highest batch received from the source." },
	{ "teleport_source_applied_seq", "Last batch applied from the source." },
	{ "teleport_source_applied_timestamp_seconds", "When the last batch was applied." },
	{ "teleport_source_waiting_batches", "Received batches not applied yet." },
	{ "teleport_source_lag_seconds", "Seconds from batch cut to apply (or to now while waiting)." },
	{ "teleport_source_ddl_waiting_seq", "Batch held until a schema change arrives, 0 when none." },
	{ "teleport_source_ddl_waiting_seconds",
	  "Seconds the held batch has waited for a schema change, 0 when none." },
}, command_metrics[] = {
	{ "teleport_command_exit_code", "Exit status of the command's last run." },
	{ "teleport_command_last_run_timestamp_seconds", "When the command's last run ended." },
	{ "teleport_command_last_success_timestamp_seconds", "When the command last ended with exit 0." },
	{ "teleport_command_error_since_timestamp_seconds", "Start of the current run of failures, 0 when none." },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static double target_value(const st_target *t, size_t m)
{
	const double v[] = { (double)t->last_seq, (double)t->last_cut, (double)t->written,
			     (double)t->sent, (double)t->unsent, (double)t->unsent_bytes,
			     (double)t->backlog_events, (double)t->backlog_bytes, t->lag };
	_Static_assert(NELEM(v) == NELEM(target_metrics), "one value per target metric");
	return v[m];
}

/* false: no sample (the lag of a source is not always known) */
static bool source_value(const st_source *s, size_t m, double *out)
{
	const double v[] = { (double)s->received, (double)s->applied, (double)s->applied_at,
			     (double)s->waiting, s->lag, (double)s->ddl_waiting, s->ddl_seconds };
	_Static_assert(NELEM(v) == NELEM(source_metrics), "one value per source metric");
	*out = v[m];
	return m != 4 || s->lag_known;
}

static double command_value(const outcome *o, size_t m)
{
	const double v[] = { (double)o->exit, (double)o->end, (double)o->last_ok,
			     (double)o->error_since };
	_Static_assert(NELEM(v) == NELEM(command_metrics), "one value per command metric");
	return v[m];
}

/* A label value, escaped as the exposition format wants. */
static void label(strbuf *sb, const char *key, const char *v)
{
	strbuf_addf(sb, "%s=\"", key);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			strbuf_addc(sb, '\\');
		if (*v == '\n')
			strbuf_adds(sb, "\\n");
		else
			strbuf_addc(sb, *v);
	}
	strbuf_addc(sb, '"');
}

static void family(strbuf *sb, const struct metric *m)
{
	strbuf_addf(sb, "# HELP %s %s\n# TYPE %s gauge\n", m->name, m->help, m->name);
}

static void sample(strbuf *sb, const char *name, const char *node, const char *key,
		   const char *val, double v)
{
	strbuf_addf(sb, "%s{", name);
	label(sb, "node", node);
	if (key && val) {
		strbuf_addc(sb, ',');
		label(sb, key, val);
	}
	strbuf_addf(sb, "} %.17g\n", v);
}

static void prometheus_text(const status *st, strbuf *sb)
{
	static const struct metric up = { "teleport_up", "1 when the node's database answered." },
		healthy = { "teleport_healthy", "1 when tp-status found nothing wrong." };
	const char *node = st->cfg->node_name;
	double v;

	family(sb, &up);
	sample(sb, up.name, node, NULL, NULL, st->db_up);
	family(sb, &healthy);
	sample(sb, healthy.name, node, NULL, NULL, st->nproblems == 0);
	for (size_t m = 0; st->ntargets && m < NELEM(target_metrics); m++) {
		family(sb, &target_metrics[m]);
		for (size_t i = 0; i < st->ntargets; i++)
			sample(sb, target_metrics[m].name, node, "target", st->targets[i].name,
			       target_value(&st->targets[i], m));
	}
	for (size_t m = 0; st->nsources && m < NELEM(source_metrics); m++) {
		family(sb, &source_metrics[m]);
		for (size_t i = 0; i < st->nsources; i++)
			if (source_value(&st->sources[i], m, &v))
				sample(sb, source_metrics[m].name, node, "source",
				       st->sources[i].name, v);
	}
	for (size_t m = 0; st->ncmds && m < NELEM(command_metrics); m++) {
		family(sb, &command_metrics[m]);
		for (size_t i = 0; i < st->ncmds; i++)
			sample(sb, command_metrics[m].name, node, "command", st->cmds[i].command,
			       command_value(&st->cmds[i], m));
	}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int status_write_prometheus(const status *st, const char *path)
{
	char dir[PATH_MAX], tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	strbuf sb = { 0 };
	int fd;

	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (slash == path)
		snprintf(dir, sizeof dir, "/");
	prometheus_text(st, &sb);
	/* node_exporter runs as its own user: the file must be readable by all */
	if ((fd = spool_tmpfile(dir, tmp)) < 0 || fchmod(fd, 0644) < 0 ||
	    write_all(fd, sb.buf, sb.len) < 0) {
		log_error("cannot write %s: %m", fd < 0 ? path : tmp);
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		strbuf_free(&sb);
		return TP_EFAIL;
	}
	strbuf_free(&sb);
	if (spool_commit(fd, tmp, path) < 0) {
		log_error("cannot write %s: %m", path);
		return TP_EFAIL;
	}
	return TP_OK;
}
