-- Foreign-key constraints whose table and referenced table are in the same schema, one of $1 (text[]);
-- columns in key order. diesel print-schema considers exactly these (it reads one schema at a time).
SELECT con.conname::text AS constraint_name,
       n.nspname::text AS schema_name,
       c.relname::text AS table_name,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS columns,
       fc.relname::text AS parent_table,
       ARRAY(SELECT a.attname::text
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS parent_columns
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class fc ON fc.oid = con.confrelid
JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.contype = 'f'
  AND n.nspname = ANY($1)
  AND fn.nspname = n.nspname
ORDER BY n.nspname, c.relname, con.conname
