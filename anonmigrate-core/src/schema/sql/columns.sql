-- Every live column of every table of the schemas in $1 (text[]), with the same type facts
-- information_schema.columns reports (udt_name/udt_schema: a domain's base type; domain_name/domain_schema;
-- is_nullable including the domain's NOT NULL; character_maximum_length), read from pg_catalog directly
-- so that one query serves any number of tables.
SELECT a.attrelid::bigint AS table_oid,
       a.attname::text AS column_name,
       a.attnum::integer AS position,
       coalesce(bt.typname, t.typname)::text AS udt_name,
       coalesce(nbt.nspname, nt.nspname)::text AS udt_schema,
       coalesce(bt.typcategory, t.typcategory) = 'A' AS is_array,
       CASE WHEN t.typtype = 'd' THEN t.typname::text END AS domain_name,
       CASE WHEN t.typtype = 'd' THEN nt.nspname::text END AS domain_schema,
       NOT (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)) AS nullable,
       CASE
           WHEN tm.typmod = -1 THEN NULL
           WHEN tm.typid IN (1042, 1043) THEN tm.typmod - 4  -- bpchar, varchar
           WHEN tm.typid IN (1560, 1562) THEN tm.typmod      -- bit, varbit
       END AS max_length,
       col_description(a.attrelid, a.attnum) AS comment,
       format_type(a.atttypid, a.atttypmod) AS declared_type
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_namespace nt ON nt.oid = t.typnamespace
LEFT JOIN (pg_type bt JOIN pg_namespace nbt ON nbt.oid = bt.typnamespace)
       ON t.typtype = 'd' AND t.typbasetype = bt.oid
CROSS JOIN LATERAL (
    SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END AS typid,
           CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod
) tm
WHERE a.attnum > 0
  AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p')
  AND n.nspname = ANY($1)
  AND NOT pg_is_other_temp_schema(n.oid)
ORDER BY a.attrelid, a.attnum
