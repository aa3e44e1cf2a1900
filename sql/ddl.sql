-- ddl.sql - the catalog description behind schema changes (lib/ddl.h).
--
-- describe() returns every object that some target might replicate, as
-- the calling transaction sees them, unfiltered: lib/ddlcat.c keeps what
-- each target's globs match. tp-batch calls it in its plan transaction
-- (ddl = diff); with ddl = event-triggers the event trigger also calls it
-- inside the user's transaction, after each schema change, and stores the
-- text in the event stream (ddl_mark below), so a batch knows the exact
-- shape of the catalog between any two rows.
--
-- The text: the rows of the first query (schemas, tables with the capture
-- trigger, their columns and primary keys), one record text a line, then
-- a line "--", then the rows of the second (types, sequences, constraints,
-- indexes, extensions, functions, foreign keys, each object followed by
-- its parts). A function's definition keeps its newlines, inside the
-- record's quotes: lib/ddlcat.c reads records, not lines. search_path is
-- empty, as on tp-batch's sessions: format_type and pg_get_expr qualify
-- every name.
--
-- What an extension brings along (pg_depend deptype 'e': its types,
-- functions, sequences) is left out: CREATE EXTENSION on the target makes
-- it, and creating it a second time would fail.

CREATE OR REPLACE FUNCTION @schema@.describe() RETURNS text
LANGUAGE sql SET search_path = '' AS $fn$
WITH nsp AS (
    SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
     WHERE n.nspname <> ALL (ARRAY['pg_catalog', 'information_schema', 'pg_toast'])
       AND n.oid <> '@schema@'::pg_catalog.regnamespace
       AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'),
rel AS (
    -- only tables with the row capture trigger: one without it is not
    -- replicated yet
    SELECT c.oid, c.relnamespace, n.nspname, c.relname, c.relnatts
      FROM pg_catalog.pg_class c JOIN nsp n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid
                      AND t.tgfoid = '@schema@.capture()'::pg_catalog.regprocedure
                      AND (t.tgtype & 1) = 1)),
-- a column: name, type, NOT NULL, default, generated, identity (a, d
-- or NULL) and its sequence's last value (the identity's own sequence,
-- bound to the column by an internal dependency)
tabs (k, oid, s, f1, f2, f3, f4, f5, f6, f7) AS (
    SELECT 1, n.oid, 0, n.nspname::text, NULL::text, NULL::text, NULL::text, NULL::text,
           NULL::text, NULL::text
      FROM nsp n
    UNION ALL
    SELECT 2, r.oid, 0, r.relnamespace::text, r.nspname::text, r.relname::text,
           r.relnatts::text, NULL, NULL, NULL
      FROM rel r
    UNION ALL
    SELECT 3, a.attrelid, a.attnum, a.attname::text,
           pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
           pg_catalog.pg_get_expr(d.adbin, d.adrelid), (a.attgenerated <> '')::text,
           NULLIF(a.attidentity::text, ''),
           CASE WHEN pg_catalog.has_sequence_privilege(q.objid, 'SELECT,USAGE')
                THEN pg_catalog.pg_sequence_last_value(q.objid::pg_catalog.regclass)::text END
      FROM rel r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid
           AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      LEFT JOIN pg_catalog.pg_depend q
             ON a.attidentity <> '' AND q.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
            AND q.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
            AND q.refobjid = a.attrelid AND q.refobjsubid = a.attnum AND q.deptype = 'i'
    UNION ALL
    SELECT 4, k.conrelid, 0, k.oid::text, k.conname::text,
           pg_catalog.array_to_string(k.conkey, ','), NULL, NULL, NULL, NULL
      FROM rel r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid AND k.contype = 'p'),
typ AS (
    SELECT t.*, n.nspname FROM pg_catalog.pg_type t JOIN nsp n ON n.oid = t.typnamespace
     WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND EXISTS (SELECT 1
           FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
       -- an extension's composite type is a member through its relation
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x WHERE x.deptype = 'e'
           AND ((x.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND x.objid = t.oid)
             OR (x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                 AND x.objid = t.typrelid)))),
tab AS (
    SELECT c.oid, c.relname, c.relkind, n.nspname FROM pg_catalog.pg_class c
      JOIN nsp n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition),
-- (ord, letter, oid, part, sub, c1..c13). Sequence values are read here
-- (they are not transactional: a value may be a little ahead of the
-- snapshot, which only moves the target's further on). An index's
-- definition is kept from USING on, cut after the exact head
-- pg_get_indexdef writes for it, so the target builds the head from its
-- own names.
objs (o, l, oid, p, s, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13) AS (
    SELECT 1, 'e', t.oid, 0, 0, t.typnamespace::text, t.nspname::text, t.typname::text,
           NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text,
           NULL::text, NULL::text, NULL::text, NULL::text
      FROM typ t WHERE t.typtype = 'e'
    UNION ALL
    SELECT 1, 'E', e.enumtypid, 1, pg_catalog.row_number() OVER
           (PARTITION BY e.enumtypid ORDER BY e.enumsortorder)::int, e.oid::text,
           e.enumlabel::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM typ t JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
    UNION ALL
    SELECT 2, 'c', t.oid, 0, 0, t.typnamespace::text, t.nspname, t.typname,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM typ t WHERE t.typtype = 'c'
    UNION ALL
    SELECT 2, 'C', t.oid, 1, a.attnum, a.attnum::text, a.attname::text,
           pg_catalog.format_type(a.atttypid, a.atttypmod),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM typ t JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid
           AND a.attnum > 0 AND NOT a.attisdropped
     WHERE t.typtype = 'c'
    UNION ALL
    SELECT 3, 'd', t.oid, 0, 0, t.typnamespace::text, t.nspname, t.typname,
           pg_catalog.format_type(t.typbasetype, t.typtypmod), t.typnotnull::text,
           pg_catalog.pg_get_expr(t.typdefaultbin, 0), NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM typ t WHERE t.typtype = 'd'
    UNION ALL
    SELECT 3, 'D', k.contypid, 1, pg_catalog.row_number() OVER
           (PARTITION BY k.contypid ORDER BY k.oid)::int, k.oid::text, k.conname::text,
           pg_catalog.pg_get_constraintdef(k.oid),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM typ t JOIN pg_catalog.pg_constraint k ON k.contypid = t.oid AND k.contype = 'c'
    UNION ALL
    SELECT 4, 's', c.oid, 0, 0, c.relnamespace::text, n.nspname, c.relname,
           pg_catalog.format_type(q.seqtypid, NULL), q.seqstart::text, q.seqincrement::text,
           q.seqmin::text, q.seqmax::text, q.seqcache::text, q.seqcycle::text,
           d.refobjid::text, d.refobjsubid::text,
           CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT,USAGE')
                THEN pg_catalog.pg_sequence_last_value(c.oid::pg_catalog.regclass)::text END
      FROM pg_catalog.pg_class c JOIN nsp n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid
      LEFT JOIN pg_catalog.pg_depend d
             ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype = 'a'
     WHERE c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i
           WHERE i.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND i.objid = c.oid
             AND i.deptype IN ('i', 'e'))
    UNION ALL
    SELECT 5, 'k', k.oid, 0, 0, k.conrelid::text, r.nspname, k.conname,
           k.contype::text, pg_catalog.pg_get_constraintdef(k.oid),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM tab r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid AND k.contype IN ('u', 'c')
    UNION ALL
    SELECT 6, 'i', i.indexrelid, 0, 0, i.indrelid::text, r.nspname, x.relname,
           i.indisunique::text,
           CASE WHEN pg_catalog.left(x.d, pg_catalog.length(x.head)) = x.head
                THEN pg_catalog.substr(x.d, pg_catalog.length(x.head) + 1) END,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM tab r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
     CROSS JOIN LATERAL (SELECT ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid) d,
           'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
           || pg_catalog.quote_ident(ic.relname) || ' ON '
           || CASE WHEN r.relkind = 'p' THEN 'ONLY ' ELSE '' END
           || pg_catalog.quote_ident(r.nspname) || '.' || pg_catalog.quote_ident(r.relname)
           || ' USING ' head FROM pg_catalog.pg_class ic WHERE ic.oid = i.indexrelid) x
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k
           WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
             AND k.contype IN ('p', 'u', 'x'))
    UNION ALL
    SELECT 7, 'x', e.oid, 0, 0, e.extnamespace::text, n.nspname, e.extname::text,
           e.extversion, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM pg_catalog.pg_extension e JOIN nsp n ON n.oid = e.extnamespace
     WHERE e.extname <> 'plpgsql'
    UNION ALL
    -- functions and procedures in a language a non-superuser may use (C
    -- and internal ones could not be created on the target), as
    -- pg_get_functiondef writes them after the exact head it starts with,
    -- so the target builds the head from its own names, as for indexes
    SELECT 8, 'u', p.oid, 0, 0, p.pronamespace::text, n.nspname, p.proname::text,
           p.prokind::text, x.args, x.ident,
           CASE WHEN pg_catalog.left(x.d, pg_catalog.length(x.head)) = x.head
                THEN pg_catalog.substr(x.d, pg_catalog.length(x.head) + 1) END,
           NULL, NULL, NULL, NULL, NULL, NULL
      FROM pg_catalog.pg_proc p JOIN nsp n ON n.oid = p.pronamespace
      JOIN pg_catalog.pg_language l ON l.oid = p.prolang AND l.lanpltrusted
     CROSS JOIN LATERAL (SELECT y.args, y.ident, y.d, 'CREATE OR REPLACE '
           || CASE WHEN p.prokind = 'p' THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
           || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname)
           || '(' || y.args || ')' head
           FROM (SELECT pg_catalog.pg_get_function_arguments(p.oid) args,
                        pg_catalog.pg_get_function_identity_arguments(p.oid) ident,
                        pg_catalog.pg_get_functiondef(p.oid) d) y) x
     WHERE p.prokind IN ('f', 'p') AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
           WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid
             AND e.deptype = 'e')
    UNION ALL
    -- foreign keys as catalog fields, not pg_get_constraintdef's text: it
    -- names the referenced table, which the target may call otherwise
    -- (apply_schema). confdelsetcols (ON DELETE SET NULL (cols)) is new
    -- in PostgreSQL 15: read through jsonb, which older ones lack as NULL.
    -- A partition's share of a key (conparentid) comes with its parent.
    SELECT 9, 'f', k.oid, 0, 0, k.conrelid::text, r.nspname, k.conname::text,
           k.confrelid::text, pg_catalog.array_to_string(k.conkey, ','),
           pg_catalog.array_to_string(k.confkey, ','), k.confmatchtype::text,
           k.confupdtype::text, k.confdeltype::text, k.condeferrable::text,
           k.condeferred::text,
           (SELECT pg_catalog.string_agg(v, ',') FROM pg_catalog.jsonb_array_elements_text(
                   CASE WHEN pg_catalog.jsonb_typeof(j.s) = 'array' THEN j.s END) v),
           k.convalidated::text
      FROM tab r JOIN pg_catalog.pg_constraint k ON k.conrelid = r.oid AND k.contype = 'f'
           AND k.conparentid = 0
     CROSS JOIN LATERAL (SELECT pg_catalog.to_jsonb(k) -> 'confdelsetcols' s) j)
SELECT pg_catalog.concat(
    (SELECT pg_catalog.string_agg(x::text, E'\n' ORDER BY x.k, x.oid, x.s) FROM tabs x),
    E'\n--\n',
    (SELECT pg_catalog.string_agg(y::text, E'\n' ORDER BY y.o, y.oid, y.p, y.s) FROM objs y))
$fn$;
