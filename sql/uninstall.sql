-- uninstall.sql - drop exactly what common.sql, source.sql, ddl.sql, ddlevent.sql and target.sql
-- create, then the schema itself WITHOUT cascade: if anything else lives in
-- the schema (a user's table that landed there through "$user" in the
-- search_path, say), the drop fails and the whole uninstall is rolled back,
-- so nothing but teleport's own objects is ever removed.
-- Every object added to those files must be added here too.
DROP VIEW IF EXISTS @schema@.event;
DROP TABLE IF EXISTS @schema@.event_0, @schema@.event_1, @schema@.event_2;
DROP SEQUENCE IF EXISTS @schema@.event_id_seq;
DROP TABLE IF EXISTS @schema@.copy, @schema@.catalog;
DROP TABLE IF EXISTS @schema@.batch, @schema@.target, @schema@.queue;
DROP TABLE IF EXISTS @schema@.load_reserve, @schema@.loaded;
DROP FUNCTION IF EXISTS @schema@.capture();
DROP FUNCTION IF EXISTS @schema@.describe();
-- ddlevent.sql (tp-install drops the event triggers first)
DROP FUNCTION IF EXISTS @schema@.ddl_end(), @schema@.ddl_drop(), @schema@.ddl_mark(),
    @schema@.ddl_seed(oid), @schema@.ddl_event("char", text, text, text),
    @schema@.ddl_in_trigger(), @schema@.ddl_concerns(text, boolean), @schema@.ddl_wanted();
DROP TABLE IF EXISTS @schema@.ddl_clock, @schema@.ddl_glob;
DROP TABLE IF EXISTS @schema@.applied, @schema@.apply_log;
DROP TABLE IF EXISTS @schema@.version;
DROP SCHEMA IF EXISTS @schema@;
