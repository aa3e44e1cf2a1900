-- target.sql - the target side's bookkeeping: what was applied from each
-- source. tp-apply writes both tables in the same transaction as a batch's
-- rows, so a batch is applied exactly once.

-- The high-water mark per source: the last batch applied.
CREATE TABLE IF NOT EXISTS @schema@.applied (
    source     text PRIMARY KEY,
    seq        bigint NOT NULL,
    digest     text NOT NULL,          -- hex SHA-256 of its manifest.json
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- One row per applied batch: refuses a different batch under a used
-- number, and feeds tp-status. tp-vacuum trims it past `retention`.
CREATE TABLE IF NOT EXISTS @schema@.apply_log (
    source     text NOT NULL,
    seq        bigint NOT NULL,
    kind       text NOT NULL,          -- rows | load
    digest     text NOT NULL,
    events     bigint NOT NULL,        -- row changes (schema change lines not counted)
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (source, seq)
);

-- When the batch was cut on the source (its header's "created"), so that
-- tp-status can tell the lag from source to target. NULL where tp-apply
-- did not record it; tp-status then reads the applied file's header.
ALTER TABLE @schema@.apply_log ADD COLUMN IF NOT EXISTS batch_created timestamptz;
