-- common.sql - objects every teleport node has, source or target.
-- Every schema placeholder is replaced by the quoted name of [node] schema.
CREATE SCHEMA IF NOT EXISTS @schema@;

-- Which version of each part is installed; tp-install upgrades from here.
CREATE TABLE IF NOT EXISTS @schema@.version (
    component text PRIMARY KEY,
    version   integer NOT NULL,
    installed timestamptz NOT NULL DEFAULT pg_catalog.now()
);
