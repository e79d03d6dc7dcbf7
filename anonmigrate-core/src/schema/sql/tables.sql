-- Ordinary and partitioned tables of the schemas in $1 (text[]): what information_schema.tables calls
-- 'BASE TABLE', which is what diesel print-schema lists. One row per table.
SELECT c.oid::bigint AS oid,
       n.nspname::text AS schema_name,
       c.relname::text AS table_name,
       c.relkind = 'p' AS partitioned,
       obj_description(c.oid, 'pg_class') AS comment
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname = ANY($1)
  AND NOT pg_is_other_temp_schema(n.oid)
ORDER BY c.oid
