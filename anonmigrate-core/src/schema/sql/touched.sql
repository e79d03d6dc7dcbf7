-- The fingerprint scopes (fingerprint.sql's scope_kind, scope_oid) that the DDL since the last call touched, read
-- from (and cleared out of) the table the down.sql check's event triggers fill. Besides each touched object's own
-- scope, the scopes whose definition texts show its name: foreign keys to a touched table, views on it, its
-- sequences; columns, domains and functions of a touched type; everything in a touched schema. 'raw' rows are the
-- touched catalog rows themselves, for objects already dropped: the caller knows which scope held them.
WITH t AS (
    DELETE FROM __anonmigrate_touched RETURNING classid, objid
),
d AS (
    SELECT 'r'::text AS k,
           CASE WHEN c.relkind IN ('i', 'I') THEN (SELECT x.indrelid FROM pg_index x WHERE x.indexrelid = c.oid) ELSE c.oid END AS o
    FROM t JOIN pg_class c ON t.classid = 'pg_class'::regclass AND c.oid = t.objid AND c.relkind <> 'c'
    UNION SELECT 't', c.reltype FROM t JOIN pg_class c ON t.classid = 'pg_class'::regclass AND c.oid = t.objid AND c.relkind = 'c'
    UNION SELECT 't', t.objid FROM t WHERE t.classid = 'pg_type'::regclass
    UNION SELECT 'p', t.objid FROM t WHERE t.classid = 'pg_proc'::regclass
    UNION SELECT 'n', t.objid FROM t WHERE t.classid = 'pg_namespace'::regclass
    UNION SELECT 'e', t.objid FROM t WHERE t.classid = 'pg_extension'::regclass
    UNION SELECT CASE WHEN co.conrelid <> 0 THEN 'r' ELSE 't' END, CASE WHEN co.conrelid <> 0 THEN co.conrelid ELSE co.contypid END
    FROM t JOIN pg_constraint co ON t.classid = 'pg_constraint'::regclass AND co.oid = t.objid
    UNION SELECT 'r', x.tgrelid FROM t JOIN pg_trigger x ON t.classid = 'pg_trigger'::regclass AND x.oid = t.objid
    UNION SELECT 'r', x.polrelid FROM t JOIN pg_policy x ON t.classid = 'pg_policy'::regclass AND x.oid = t.objid
    UNION SELECT 'r', x.ev_class FROM t JOIN pg_rewrite x ON t.classid = 'pg_rewrite'::regclass AND x.oid = t.objid
    UNION SELECT 'r', x.adrelid FROM t JOIN pg_attrdef x ON t.classid = 'pg_attrdef'::regclass AND x.oid = t.objid
),
rels AS (SELECT o FROM d WHERE k = 'r' AND o IS NOT NULL),
-- Only types that still exist: what used a dropped type was dropped with it (and is in t itself), and looking for
-- users of a type means reading all of pg_attribute and pg_proc, which no step that drops a table should pay.
types AS (SELECT d.o FROM d JOIN pg_type ty ON ty.oid = d.o WHERE d.k = 't'),
nsps AS (SELECT o FROM d WHERE k = 'n')
SELECT 'raw'::text AS kind, t.classid::bigint AS class, t.objid::bigint AS oid FROM t
UNION SELECT d.k, 0, d.o::bigint FROM d WHERE d.o IS NOT NULL
UNION SELECT 'r', 0, co.conrelid::bigint
    FROM pg_depend dp JOIN pg_constraint co ON dp.classid = 'pg_constraint'::regclass AND co.oid = dp.objid
    WHERE dp.refclassid = 'pg_class'::regclass AND dp.refobjid IN (SELECT o FROM rels) AND co.confrelid = dp.refobjid
UNION SELECT 'r', 0, rw.ev_class::bigint
    FROM pg_depend dp JOIN pg_rewrite rw ON dp.classid = 'pg_rewrite'::regclass AND dp.objid = rw.oid
    WHERE dp.refclassid = 'pg_class'::regclass AND dp.refobjid IN (SELECT o FROM rels)
UNION SELECT 'r', 0, dp.objid::bigint FROM pg_depend dp
    WHERE dp.classid = 'pg_class'::regclass AND dp.refclassid = 'pg_class'::regclass AND dp.deptype IN ('a', 'i')
      AND dp.refobjid IN (SELECT o FROM rels)
UNION SELECT 'r', 0, a.attrelid::bigint FROM pg_attribute a
    WHERE EXISTS (SELECT 1 FROM types)
      AND (a.atttypid IN (SELECT o FROM types) OR a.atttypid IN (SELECT ty.typarray FROM pg_type ty WHERE ty.oid IN (SELECT o FROM types)))
UNION SELECT 't', 0, ty.oid::bigint FROM pg_type ty WHERE ty.typbasetype IN (SELECT o FROM types)
UNION SELECT 'p', 0, pr.oid::bigint FROM pg_proc pr
    WHERE EXISTS (SELECT 1 FROM types) AND (pr.prorettype IN (SELECT o FROM types) OR pr.proargtypes::oid[] && ARRAY(SELECT o FROM types))
UNION SELECT 'r', 0, c.oid::bigint FROM pg_class c WHERE c.relnamespace IN (SELECT o FROM nsps)
UNION SELECT 't', 0, ty.oid::bigint FROM pg_type ty WHERE ty.typnamespace IN (SELECT o FROM nsps)
UNION SELECT 'p', 0, pr.oid::bigint FROM pg_proc pr WHERE pr.pronamespace IN (SELECT o FROM nsps)
