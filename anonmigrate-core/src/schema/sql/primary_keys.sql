-- Primary-key columns, in key order, of every table of the schemas in $1 (text[]).
SELECT con.conrelid::bigint AS table_oid,
       array_agg(a.attname::text ORDER BY k.ord) AS columns
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
WHERE con.contype = 'p'
  AND n.nspname = ANY($1)
GROUP BY con.conrelid
