-- A fingerprint of everything a migration can create in a database, in one query: schemas, extensions, tables,
-- views, sequences, columns (with their position), indexes, constraints, enums/domains/composite/range types,
-- functions and procedures, triggers, policies and rules. One row per object: kind, schema, name, the table it
-- belongs to ('' for none) and a definition text that changes whenever the object does.
--
-- Left out: system schemas, objects that belong to an extension (the extension row stands for them; looked up per
-- object through pg_depend's index, so a read of a few objects does not scan all of pg_depend), and the
-- bookkeeping tables (__diesel_schema_migrations, __anonmigrate_*, and Alembic's alembic_version, which a database
-- adopted from Alembic keeps) with everything on them, and our own functions (__anonmigrate_*, the down.sql check's
-- event trigger functions).
--
-- Each row also says which scope it belongs to (scope_kind: r relation, t type, p function, n schema, e extension;
-- scope_oid) and which catalog row it is (own_class, own_oid), so `check` can re-read only the scopes a migration
-- touched: the /*rel*/TRUE, /*typ*/TRUE, /*proc*/TRUE, /*nsp*/TRUE and /*ext*/TRUE markers are replaced by oid
-- filters then (touched.rs), and left as TRUE for the whole database.
WITH nsp AS (
    SELECT n.oid, n.nspname
    FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname NOT LIKE 'pg\_temp\_%'
      AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
),
rel AS (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relispartition, n.nspname
    FROM pg_class c
    JOIN nsp n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND c.relname NOT LIKE '\_\_diesel\_schema\_migrations%'
      AND c.relname NOT LIKE '\_\_anonmigrate\_%'
      AND c.relname <> 'alembic_version'
      AND NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid AND ext.deptype = 'e')
      AND /*rel*/TRUE
),
typ AS (
    SELECT t.oid, t.typname, t.typtype, t.typbasetype, t.typtypmod, t.typnotnull, t.typdefaultbin, t.typrelid, n.nspname
    FROM pg_type t
    JOIN nsp n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd', 'r', 'c')
      AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_type'::regclass AND ext.objid = t.oid AND ext.deptype = 'e')
      AND /*typ*/TRUE
)
SELECT 'schema'::text AS kind, n.nspname::text AS schema_name, n.nspname::text AS name, ''::text AS parent, ''::text AS definition,
       'n'::text AS scope_kind, n.oid::bigint AS scope_oid, 'pg_namespace'::regclass::oid::bigint AS own_class, n.oid::bigint AS own_oid
FROM nsp n
WHERE NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = n.oid AND ext.deptype = 'e')
  AND /*nsp*/TRUE
UNION ALL
SELECT 'extension', n.nspname::text, e.extname::text, '', 'version ' || e.extversion,
       'e', e.oid::bigint, 'pg_extension'::regclass::oid::bigint, e.oid::bigint
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE /*ext*/TRUE
UNION ALL
SELECT CASE r.relkind
           WHEN 'v' THEN 'view'
           WHEN 'm' THEN 'materialized view'
           WHEN 'f' THEN 'foreign table'
           WHEN 'S' THEN 'sequence'
           ELSE 'table'
       END,
       r.nspname::text, r.relname::text, '',
       CASE
           WHEN r.relkind IN ('v', 'm') THEN pg_get_viewdef(r.oid)
           WHEN r.relkind = 'S' THEN (
               SELECT format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
                      || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache
                      || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
               FROM pg_sequence s WHERE s.seqrelid = r.oid)
           ELSE concat_ws(' ',
               CASE WHEN r.relkind = 'p' THEN 'partitioned by ' || pg_get_partkeydef(r.oid) END,
               CASE WHEN r.relispartition THEN
                   'partition of ' || (SELECT string_agg(i.inhparent::regclass::text, ', ') FROM pg_inherits i WHERE i.inhrelid = r.oid)
                   || ' ' || pg_get_expr((SELECT c.relpartbound FROM pg_class c WHERE c.oid = r.oid), r.oid)
               END,
               CASE WHEN r.relpersistence = 'u' THEN 'unlogged' END,
               CASE WHEN r.relrowsecurity THEN 'row level security' END)
       END,
       'r', r.oid::bigint, 'pg_class'::regclass::oid::bigint, r.oid::bigint
FROM rel r
UNION ALL
SELECT 'column', r.nspname::text, a.attname::text, r.relname::text,
       concat_ws(' ',
           format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attnotnull THEN 'NOT NULL' END,
           CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END,
           CASE
               WHEN a.attgenerated = 's' THEN 'GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
               WHEN ad.adbin IS NOT NULL THEN 'DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid)
           END,
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                THEN 'COLLATE ' || (SELECT quote_ident(co.collname) FROM pg_collation co WHERE co.oid = a.attcollation) END),
       'r', r.oid::bigint, 'pg_class'::regclass::oid::bigint, r.oid::bigint
FROM rel r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE r.relkind <> 'S'
UNION ALL
SELECT 'column order', r.nspname::text, r.relname::text, r.relname::text,
       string_agg(a.attname::text, ', ' ORDER BY a.attnum),
       'r', r.oid::bigint, 'pg_class'::regclass::oid::bigint, r.oid::bigint
FROM rel r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE r.relkind <> 'S'
GROUP BY r.nspname, r.relname, r.oid
UNION ALL
SELECT 'index', r.nspname::text, i.relname::text, r.relname::text,
       pg_get_indexdef(x.indexrelid) || CASE WHEN x.indisvalid THEN '' ELSE ' (INVALID)' END,
       'r', r.oid::bigint, 'pg_class'::regclass::oid::bigint, x.indexrelid::bigint
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN rel r ON r.oid = x.indrelid
UNION ALL
SELECT 'constraint', r.nspname::text, co.conname::text, r.relname::text, pg_get_constraintdef(co.oid),
       'r', r.oid::bigint, 'pg_constraint'::regclass::oid::bigint, co.oid::bigint
FROM pg_constraint co
JOIN rel r ON r.oid = co.conrelid
UNION ALL
SELECT 'constraint', t.nspname::text, co.conname::text, t.typname::text, pg_get_constraintdef(co.oid),
       't', t.oid::bigint, 'pg_constraint'::regclass::oid::bigint, co.oid::bigint
FROM pg_constraint co
JOIN typ t ON t.oid = co.contypid
UNION ALL
SELECT 'type', t.nspname::text, t.typname::text, '',
       CASE t.typtype
           WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                      FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
           WHEN 'd' THEN concat_ws(' ', 'domain over ' || format_type(t.typbasetype, t.typtypmod),
                                   CASE WHEN t.typnotnull THEN 'NOT NULL' END,
                                   'DEFAULT ' || pg_get_expr(t.typdefaultbin, 0))
           WHEN 'r' THEN 'range of ' || (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid)
           ELSE 'composite (' || (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                  FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')'
       END,
       't', t.oid::bigint, 'pg_type'::regclass::oid::bigint, t.oid::bigint
FROM typ t
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window function' ELSE 'function' END,
       n.nspname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', '',
       CASE WHEN p.prokind = 'a' THEN 'returns ' || pg_get_function_result(p.oid)
            ELSE 'body md5 ' || md5(pg_get_functiondef(p.oid)) END,
       'p', p.oid::bigint, 'pg_proc'::regclass::oid::bigint, p.oid::bigint
FROM pg_proc p
JOIN nsp n ON n.oid = p.pronamespace
WHERE NOT EXISTS (SELECT 1 FROM pg_depend ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid AND ext.deptype = 'e')
  -- A range type's constructor functions come and go with the type.
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
  AND p.proname NOT LIKE '\_\_anonmigrate\_%'
  AND /*proc*/TRUE
UNION ALL
SELECT 'trigger', r.nspname::text, tg.tgname::text, r.relname::text, pg_get_triggerdef(tg.oid),
       'r', r.oid::bigint, 'pg_trigger'::regclass::oid::bigint, tg.oid::bigint
FROM pg_trigger tg
JOIN rel r ON r.oid = tg.tgrelid
WHERE NOT tg.tgisinternal
UNION ALL
SELECT 'policy', r.nspname::text, po.polname::text, r.relname::text,
       concat_ws(' ', 'for ' || po.polcmd::text, CASE WHEN po.polpermissive THEN 'permissive' ELSE 'restrictive' END,
                 'using (' || pg_get_expr(po.polqual, po.polrelid) || ')',
                 'with check (' || pg_get_expr(po.polwithcheck, po.polrelid) || ')'),
       'r', r.oid::bigint, 'pg_policy'::regclass::oid::bigint, po.oid::bigint
FROM pg_policy po
JOIN rel r ON r.oid = po.polrelid
UNION ALL
SELECT 'rule', r.nspname::text, rw.rulename::text, r.relname::text, pg_get_ruledef(rw.oid),
       'r', r.oid::bigint, 'pg_rewrite'::regclass::oid::bigint, rw.oid::bigint
FROM pg_rewrite rw
JOIN rel r ON r.oid = rw.ev_class
WHERE rw.rulename <> '_RETURN'
ORDER BY 1, 2, 4, 3
