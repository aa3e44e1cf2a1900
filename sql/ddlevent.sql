-- ddlevent.sql - ddl = event-triggers: schema changes recorded in the
-- event stream by the user's own transaction (tp-install runs this, and
-- then creates the event triggers, only in that mode; it needs a role
-- that may CREATE EVENT TRIGGER: a superuser, or rds_superuser and its
-- kin on managed services).
--
-- After each schema change that may concern a target, ddl_end() (on
-- ddl_command_end) and ddl_drop() (on sql_drop: a DROP reports nothing to
-- ddl_command_end) append one event with ev_op 'S' whose ev_new is
-- describe()'s text: the whole catalog as it stands right after the
-- change, inside the changing transaction. tp-batch diffs consecutive
-- descriptions and writes the schema changes exactly between the rows
-- captured before and after them (lib/batchbuild.c).
--
-- Two descriptions in the stream must not miss each other's changes, so
-- the transactions that record one take turns: ddl_mark() updates the
-- one row of ddl_clock, which a second such transaction waits for until
-- the first commits (READ COMMITTED then reads the first's changes;
-- REPEATABLE READ fails with 40001, as for any concurrent update).

CREATE TABLE IF NOT EXISTS @schema@.ddl_clock (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    n   bigint NOT NULL DEFAULT 0
);
INSERT INTO @schema@.ddl_clock DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Each target's table globs (tp.ini "tables" and "exclude") as anchored
-- regular expressions, written by tp-install: the event trigger gives a
-- new table the capture trigger as soon as a target matches it.
CREATE TABLE IF NOT EXISTS @schema@.ddl_glob (
    target    text NOT NULL,
    exclude   boolean NOT NULL,
    schema_re text NOT NULL,
    table_re  text NOT NULL
);

-- The application's roles create tables that the event trigger then
-- equips; they need to see the schema to name capture() and call the
-- functions below (which check that an event trigger is running).
GRANT USAGE ON SCHEMA @schema@ TO PUBLIC;

-- Tables some target matches, with a primary key, without the capture
-- trigger yet.
CREATE OR REPLACE FUNCTION @schema@.ddl_wanted() RETURNS SETOF oid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
SELECT c.oid FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast'])
   AND n.oid <> '@schema@'::pg_catalog.regnamespace
   AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid
                      AND t.tgfoid = '@schema@.capture()'::pg_catalog.regprocedure
                      AND (t.tgtype & 1) = 1)
   AND EXISTS (SELECT 1 FROM @schema@.ddl_glob g
                WHERE NOT g.exclude AND n.nspname ~ g.schema_re AND c.relname ~ g.table_re
                  AND NOT EXISTS (SELECT 1 FROM @schema@.ddl_glob x
                                   WHERE x.target = g.target AND x.exclude
                                     AND n.nspname ~ x.schema_re AND c.relname ~ x.table_re))
$fn$;

-- Append one event to the current event table (as capture() does).
CREATE OR REPLACE FUNCTION @schema@.ddl_event(op "char", s text, t text, rec text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    tab smallint;
BEGIN
    PERFORM @schema@.ddl_in_trigger();
    SELECT q.cur INTO tab FROM @schema@.queue q;
    EXECUTE pg_catalog.format('INSERT INTO @schema@.%I (ev_id, ev_op, ev_schema, ev_table, ev_new)'
                              ' VALUES (pg_catalog.nextval(%L), $1, $2, $3, $4)',
                              'event_' || tab, '@schema@.event_id_seq')
        USING op, s, t, rec;
END
$fn$;

-- Refuse to run outside an event trigger: both functions fail there.
CREATE OR REPLACE FUNCTION @schema@.ddl_in_trigger() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    PERFORM pg_catalog.count(*) FROM pg_catalog.pg_event_trigger_ddl_commands();
EXCEPTION WHEN OTHERS THEN
    PERFORM pg_catalog.count(*) FROM pg_catalog.pg_event_trigger_dropped_objects();
END
$fn$;

-- The catalog as it is now, unless this transaction recorded exactly
-- this description last (an ALTER TABLE ... DROP COLUMN fires both
-- triggers).
CREATE OR REPLACE FUNCTION @schema@.ddl_mark() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    d text;
    h text;
BEGIN
    PERFORM @schema@.ddl_in_trigger();
    UPDATE @schema@.ddl_clock SET n = n + 1;
    d := @schema@.describe();
    h := pg_catalog.md5(d);
    IF h = coalesce(pg_catalog.current_setting('teleport.ddl_last', true), '') THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('teleport.ddl_last', h, true);
    PERFORM @schema@.ddl_event('S', '', '', d);
END
$fn$;

-- A table that just got the capture trigger: its rows so far, as a
-- TRUNCATE and INSERTs right after the description that introduces it
-- (CREATE TABLE AS, a primary key added, a rename into a glob).
CREATE OR REPLACE FUNCTION @schema@.ddl_seed(rel oid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    s text;
    t text;
    r text;
BEGIN
    PERFORM @schema@.ddl_in_trigger();
    SELECT n.nspname, c.relname INTO s, t FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
    PERFORM @schema@.ddl_event('T', s, t, NULL);
    FOR r IN EXECUTE pg_catalog.format('SELECT x::text FROM %s x', rel::pg_catalog.regclass) LOOP
        PERFORM @schema@.ddl_event('I', s, t, r);
    END LOOP;
END
$fn$;

-- Is a command one that may concern a target? Not temporary objects, not
-- the members an extension script creates, not teleport's own schema.
CREATE OR REPLACE FUNCTION @schema@.ddl_concerns(sch text, temp boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $fn$
SELECT NOT coalesce(temp, false) AND coalesce(sch, '') <> 'pg_temp'
   AND coalesce(sch, '') <> (SELECT n.nspname FROM pg_catalog.pg_namespace n
                              WHERE n.oid = '@schema@'::pg_catalog.regnamespace)
$fn$;

-- ddl_command_end. SECURITY INVOKER: the capture trigger is created by
-- whoever changed the table (its owner, usually), as tp-install would.
-- tp-apply's own changes (teleport.origin set) are not recorded, nor
-- those this function makes (teleport.in_ddl).
CREATE OR REPLACE FUNCTION @schema@.ddl_end() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    rel oid;
    fresh oid[] := '{}';
    trig text;
BEGIN
    IF coalesce(pg_catalog.current_setting('teleport.origin', true), '') <> ''
       OR coalesce(pg_catalog.current_setting('teleport.in_ddl', true), '') = 'on'
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() c
                       WHERE NOT c.in_extension AND @schema@.ddl_concerns(c.schema_name, false)) THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('teleport.in_ddl', 'on', true);
    SELECT n.nspname INTO trig FROM pg_catalog.pg_namespace n
     WHERE n.oid = '@schema@'::pg_catalog.regnamespace;
    FOR rel IN SELECT * FROM @schema@.ddl_wanted() LOOP
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                            WHERE t.tgrelid = rel AND t.tgname = trig || '_truncate') THEN
                EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER TRUNCATE ON %s FOR EACH STATEMENT'
                                          ' EXECUTE FUNCTION @schema@.capture()',
                                          trig || '_truncate', rel::pg_catalog.regclass);
            END IF;
            EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s'
                                      ' FOR EACH ROW EXECUTE FUNCTION @schema@.capture()',
                                      trig || '_capture', rel::pg_catalog.regclass);
            fresh := fresh || rel;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'teleport: table % is not replicated: %', rel::pg_catalog.regclass, SQLERRM
                USING HINT = 'let its owner run tp-install, or make the table''s owner run the change';
        END;
    END LOOP;
    PERFORM @schema@.ddl_mark();
    FOREACH rel IN ARRAY fresh LOOP
        PERFORM @schema@.ddl_seed(rel);
    END LOOP;
    PERFORM pg_catalog.set_config('teleport.in_ddl', 'off', true);
END
$fn$;

-- sql_drop: the objects are gone from the catalog already.
CREATE OR REPLACE FUNCTION @schema@.ddl_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF coalesce(pg_catalog.current_setting('teleport.origin', true), '') <> ''
       OR coalesce(pg_catalog.current_setting('teleport.in_ddl', true), '') = 'on'
       OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() o
                       WHERE @schema@.ddl_concerns(o.schema_name, o.is_temporary)) THEN
        RETURN;
    END IF;
    PERFORM @schema@.ddl_mark();
END
$fn$;
