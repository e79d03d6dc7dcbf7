-- Enums (with their labels in sort order) and domains (with their base type) of the schemas in $1 (text[]).
SELECT n.nspname::text AS schema_name,
       t.typname::text AS type_name,
       t.typtype = 'e' AS is_enum,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
       t.typnotnull AS not_null
FROM pg_type t
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype IN ('e', 'd')
  AND n.nspname = ANY($1)
ORDER BY n.nspname, t.typname
