-- source.sql - change capture on a source node.
--
-- Capture is insert-only: the trigger appends one row per row change to
-- the current event table and nothing ever UPDATEs an event. Three event
-- tables take turns (PgQ's rotation): once every target has batched past
-- one, tp-vacuum TRUNCATEs it instead of deleting rows, so the queue does
-- not bloat. The view `event` is their union, which tp-batch reads.
--
-- Batches are cut between two snapshots (pg_snapshot): a batch holds the
-- events of the transactions visible in `hi` and not in `lo`, so a batch
-- never splits a transaction and one still open at the cut lands, whole, in
-- a later batch. ev_txid is the epoch-extended 64-bit xid8.

-- CACHE 1: ids must follow call order across sessions (a per-backend cache
-- would hand out ids out of order, and ordering inside a batch relies on it).
CREATE SEQUENCE IF NOT EXISTS @schema@.event_id_seq CACHE 1;

CREATE TABLE IF NOT EXISTS @schema@.event_0 (
    ev_id     bigint NOT NULL,
    ev_txid   pg_catalog.xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ev_time   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    ev_op     "char" NOT NULL,          -- I U D T
    ev_schema text NOT NULL,
    ev_table  text NOT NULL,
    ev_old    text,                     -- OLD::text for U and D
    ev_new    text                      -- NEW::text for I and U
);
CREATE TABLE IF NOT EXISTS @schema@.event_1 (LIKE @schema@.event_0 INCLUDING DEFAULTS);
CREATE TABLE IF NOT EXISTS @schema@.event_2 (LIKE @schema@.event_0 INCLUDING DEFAULTS);
-- No primary key: capture costs one heap and one index insert.
CREATE INDEX IF NOT EXISTS event_0_txid ON @schema@.event_0 (ev_txid);
CREATE INDEX IF NOT EXISTS event_1_txid ON @schema@.event_1 (ev_txid);
CREATE INDEX IF NOT EXISTS event_2_txid ON @schema@.event_2 (ev_txid);

CREATE OR REPLACE VIEW @schema@.event AS
    SELECT * FROM @schema@.event_0
    UNION ALL SELECT * FROM @schema@.event_1
    UNION ALL SELECT * FROM @schema@.event_2;

-- The one row saying which event table writers use now.
CREATE TABLE IF NOT EXISTS @schema@.queue (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    cur      smallint NOT NULL DEFAULT 0 CHECK (cur BETWEEN 0 AND 2),
    switched timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO @schema@.queue DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Each target's position in the stream: events visible in last_snap are
-- batched already; last_seq is the number of its newest batch.
CREATE TABLE IF NOT EXISTS @schema@.target (
    name      text PRIMARY KEY,
    last_snap pg_catalog.pg_snapshot NOT NULL,
    last_seq  bigint NOT NULL DEFAULT 0,
    created   timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Every batch cut. A batch is a pure function of its row: the events of
-- the transactions visible in hi and not in lo whose last event id lies
-- in (ev_lo, ev_hi], restricted to the target's tables. So a batch whose
-- file was lost before it was written is rebuilt identical.
CREATE TABLE IF NOT EXISTS @schema@.batch (
    target  text NOT NULL REFERENCES @schema@.target ON DELETE CASCADE,
    seq     bigint NOT NULL,
    lo      pg_catalog.pg_snapshot NOT NULL,
    hi      pg_catalog.pg_snapshot NOT NULL,
    ev_lo   bigint NOT NULL,
    ev_hi   bigint NOT NULL,
    events  bigint NOT NULL,
    bytes   bigint NOT NULL,
    created timestamptz NOT NULL DEFAULT pg_catalog.now(),
    written timestamptz,                -- set once the file is in the outbox
    PRIMARY KEY (target, seq)
);

-- The capture trigger. SECURITY DEFINER: application roles write to
-- captured tables without any grant on this schema; the pinned search_path
-- keeps the definer's rights from being hijacked. No EXCEPTION block: a
-- failed capture must abort the user's statement (never lose a change
-- silently), and an exception block would open a subtransaction per row.
CREATE OR REPLACE FUNCTION @schema@.capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    tab smallint;
    o text;
    n text;
BEGIN
    -- tp-apply marks its own writes so a node that is both target and
    -- source does not send them back where they came from.
    IF coalesce(current_setting('teleport.origin', true), '') <> '' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        n := NEW::text;
    ELSIF TG_OP = 'UPDATE' THEN
        o := OLD::text;
        n := NEW::text;
        IF o = n THEN
            RETURN NULL;  -- nothing changed: nothing to replay
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        o := OLD::text;
    END IF;
    SELECT q.cur INTO tab FROM @schema@.queue q;
    IF tab = 0 THEN
        INSERT INTO @schema@.event_0 (ev_id, ev_op, ev_schema, ev_table, ev_old, ev_new)
        VALUES (nextval('@schema@.event_id_seq'), substr(TG_OP, 1, 1), TG_TABLE_SCHEMA, TG_TABLE_NAME, o, n);
    ELSIF tab = 1 THEN
        INSERT INTO @schema@.event_1 (ev_id, ev_op, ev_schema, ev_table, ev_old, ev_new)
        VALUES (nextval('@schema@.event_id_seq'), substr(TG_OP, 1, 1), TG_TABLE_SCHEMA, TG_TABLE_NAME, o, n);
    ELSE
        INSERT INTO @schema@.event_2 (ev_id, ev_op, ev_schema, ev_table, ev_old, ev_new)
        VALUES (nextval('@schema@.event_id_seq'), substr(TG_OP, 1, 1), TG_TABLE_SCHEMA, TG_TABLE_NAME, o, n);
    END IF;
    RETURN NULL;
END
$fn$;

-- Initial loads (tp-load, lib/load.c). A load's parts are batches too:
-- kind 'load' rows, written by tp-load itself, so tp-batch never builds
-- them. A row batch that tp-load plans for the events before its snapshot
-- leaves out the loaded tables (skip_schemas/skip_names: the load holds
-- those rows already). void_from: set on the first batch after numbers an
-- unfinished load had reserved; the target skips [void_from, seq) as void.
ALTER TABLE @schema@.batch ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'rows';
ALTER TABLE @schema@.batch ADD COLUMN IF NOT EXISTS void_from bigint;
ALTER TABLE @schema@.batch ADD COLUMN IF NOT EXISTS skip_schemas text[];
ALTER TABLE @schema@.batch ADD COLUMN IF NOT EXISTS skip_names text[];

-- The highest batch number a load in progress has handed out. Written in
-- its own committed transaction before each part leaves tp-load, so after
-- a crash no number is ever used twice. No foreign key: the load holds its
-- target's row FOR UPDATE, which a key check would wait for.
CREATE TABLE IF NOT EXISTS @schema@.load_reserve (
    target text PRIMARY KEY,
    seq    bigint NOT NULL
);

-- The last committed load of each table, per target: a re-run skips them
-- unless --fresh.
CREATE TABLE IF NOT EXISTS @schema@.loaded (
    target       text NOT NULL,
    table_schema text NOT NULL,
    table_name   text NOT NULL,
    load_id      text NOT NULL,
    first_seq    bigint NOT NULL,
    last_seq     bigint NOT NULL,
    rows         bigint NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (target, table_schema, table_name)
);

-- Schema changes (ddl = diff): the description of each target's objects
-- (schemas, tables, columns, keys) as of a snapshot, one version per
-- change. target.catalog is the version as of target.last_snap; a batch
-- records the versions of its lo and hi, so it is rebuilt identical and
-- rows captured in either shape decode. tp-batch deletes versions no
-- batch or target refers to.
CREATE TABLE IF NOT EXISTS @schema@.catalog (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target text NOT NULL REFERENCES @schema@.target ON DELETE CASCADE,
    descr  text NOT NULL
);
ALTER TABLE @schema@.target ADD COLUMN IF NOT EXISTS catalog bigint;
-- ddl_pre / ddl_post: the delta's schema changes ("S" lines of
-- teleport-batch(5)), at the start of its first batch and the end of its
-- last one.
ALTER TABLE @schema@.batch ADD COLUMN IF NOT EXISTS cat_lo bigint,
    ADD COLUMN IF NOT EXISTS cat_hi bigint,
    ADD COLUMN IF NOT EXISTS ddl_pre text,
    ADD COLUMN IF NOT EXISTS ddl_post text;
-- The rows of tables that appeared in a delta, as of its hi (record text,
-- like ev_new): the first batch of the delta creates the table and
-- carries them, so rows written before the capture trigger existed are
-- not lost. Kept as long as the batch row, so the batch can be rebuilt.
CREATE TABLE IF NOT EXISTS @schema@.copy (
    target text NOT NULL,
    seq    bigint NOT NULL,
    rel_schema text NOT NULL,
    rel_name   text NOT NULL,
    ord    bigint NOT NULL,
    rec    text NOT NULL,
    FOREIGN KEY (target, seq) REFERENCES @schema@.batch ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS copy_batch ON @schema@.copy (target, seq, rel_schema, rel_name, ord);
-- ddl = event-triggers: the delta's schema changes come from the markers
-- in its events (sql/ddlevent.sql, lib/ddlmark.c); ddl_post then holds
-- only what no marker recorded.
ALTER TABLE @schema@.batch ADD COLUMN IF NOT EXISTS ddl_events boolean NOT NULL DEFAULT false;
