-- The body of __anonmigrate_refresh(), the PL/pgSQL function the down.sql check calls after each step. It takes
-- what the event triggers recorded since the last call out of __anonmigrate_touched, turns it into fingerprint
-- scopes (fingerprint.sql's scope_kind, scope_oid) in __anonmigrate_scopes, and returns the touched catalog rows
-- ('raw': for objects already dropped, the caller knows which scope held them), the scopes ('scope') and the
-- fingerprint rows of those scopes ('obj'). Each part runs only when there is something for it, so a step pays for
-- what it touched, not for every kind of object there is: touched.rs puts at the end, for each scope kind, an
-- `IF` with a `RETURN QUERY` of fingerprint.sql narrowed to the scopes of that kind.
--
-- Besides each touched object's own scope, the scopes whose definition texts show its name: foreign keys to a
-- touched table, views on it, its sequences; columns, domains and functions of a touched type; everything in a
-- touched schema.
DECLARE
    kinds text[];
BEGIN
    DELETE FROM __anonmigrate_scopes;
    WITH t AS (DELETE FROM __anonmigrate_touched RETURNING classid, objid)
    INSERT INTO __anonmigrate_scopes (kind, class, oid) SELECT 'raw', t.classid, t.objid FROM t;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- Each touched object's own scope (an index, constraint, trigger, ... counts as its table's).
    WITH t AS (SELECT s.class AS classid, s.oid AS objid FROM __anonmigrate_scopes s WHERE s.kind = 'raw')
    INSERT INTO __anonmigrate_scopes (kind, class, oid)
    SELECT DISTINCT d.k, 0, d.o FROM (
        SELECT 'r'::text AS k,
               CASE WHEN c.relkind IN ('i', 'I') THEN (SELECT x.indrelid FROM pg_index x WHERE x.indexrelid = c.oid) ELSE c.oid END AS o
        FROM t JOIN pg_class c ON t.classid = 'pg_class'::regclass AND c.oid = t.objid AND c.relkind <> 'c'
        UNION ALL SELECT 't', c.reltype FROM t JOIN pg_class c ON t.classid = 'pg_class'::regclass AND c.oid = t.objid AND c.relkind = 'c'
        UNION ALL SELECT 't', t.objid FROM t WHERE t.classid = 'pg_type'::regclass
        UNION ALL SELECT 'p', t.objid FROM t WHERE t.classid = 'pg_proc'::regclass
        UNION ALL SELECT 'n', t.objid FROM t WHERE t.classid = 'pg_namespace'::regclass
        UNION ALL SELECT 'e', t.objid FROM t WHERE t.classid = 'pg_extension'::regclass
        UNION ALL SELECT CASE WHEN co.conrelid <> 0 THEN 'r' ELSE 't' END, CASE WHEN co.conrelid <> 0 THEN co.conrelid ELSE co.contypid END
        FROM t JOIN pg_constraint co ON t.classid = 'pg_constraint'::regclass AND co.oid = t.objid
        UNION ALL SELECT 'r', x.tgrelid FROM t JOIN pg_trigger x ON t.classid = 'pg_trigger'::regclass AND x.oid = t.objid
        UNION ALL SELECT 'r', x.polrelid FROM t JOIN pg_policy x ON t.classid = 'pg_policy'::regclass AND x.oid = t.objid
        UNION ALL SELECT 'r', x.ev_class FROM t JOIN pg_rewrite x ON t.classid = 'pg_rewrite'::regclass AND x.oid = t.objid
        UNION ALL SELECT 'r', x.adrelid FROM t JOIN pg_attrdef x ON t.classid = 'pg_attrdef'::regclass AND x.oid = t.objid
    ) d
    WHERE d.o IS NOT NULL;

    -- Relations that show a touched relation's name: foreign keys to it, views on it, sequences it owns.
    IF EXISTS (SELECT 1 FROM __anonmigrate_scopes s WHERE s.kind = 'r') THEN
        WITH rels AS (SELECT s.oid AS o FROM __anonmigrate_scopes s WHERE s.kind = 'r')
        INSERT INTO __anonmigrate_scopes (kind, class, oid)
        SELECT 'r', 0, co.conrelid
            FROM pg_depend dp JOIN pg_constraint co ON dp.classid = 'pg_constraint'::regclass AND co.oid = dp.objid
            WHERE dp.refclassid = 'pg_class'::regclass AND dp.refobjid IN (SELECT o FROM rels) AND co.confrelid = dp.refobjid
        UNION SELECT 'r', 0, rw.ev_class
            FROM pg_depend dp JOIN pg_rewrite rw ON dp.classid = 'pg_rewrite'::regclass AND dp.objid = rw.oid
            WHERE dp.refclassid = 'pg_class'::regclass AND dp.refobjid IN (SELECT o FROM rels)
        UNION SELECT 'r', 0, dp.objid FROM pg_depend dp
            WHERE dp.classid = 'pg_class'::regclass AND dp.refclassid = 'pg_class'::regclass AND dp.deptype IN ('a', 'i')
              AND dp.refobjid IN (SELECT o FROM rels);
    END IF;

    -- Columns, domains and functions that use a touched type. Only types that still exist: what used a dropped
    -- type was dropped with it (and was touched itself), and finding users of a type reads all of pg_attribute
    -- and pg_proc, which no step that drops a table should pay.
    IF EXISTS (SELECT 1 FROM __anonmigrate_scopes s JOIN pg_type ty ON ty.oid = s.oid WHERE s.kind = 't') THEN
        WITH types AS (SELECT s.oid AS o FROM __anonmigrate_scopes s JOIN pg_type ty ON ty.oid = s.oid WHERE s.kind = 't')
        INSERT INTO __anonmigrate_scopes (kind, class, oid)
        SELECT 'r', 0, a.attrelid FROM pg_attribute a
            WHERE a.atttypid IN (SELECT o FROM types) OR a.atttypid IN (SELECT ty.typarray FROM pg_type ty WHERE ty.oid IN (SELECT o FROM types))
        UNION SELECT 't', 0, ty.oid FROM pg_type ty WHERE ty.typbasetype IN (SELECT o FROM types)
        UNION SELECT 'p', 0, pr.oid FROM pg_proc pr
            WHERE pr.prorettype IN (SELECT o FROM types) OR pr.proargtypes::oid[] && ARRAY(SELECT o FROM types);
    END IF;

    -- Everything in a touched schema.
    IF EXISTS (SELECT 1 FROM __anonmigrate_scopes s WHERE s.kind = 'n') THEN
        WITH nsps AS (SELECT s.oid AS o FROM __anonmigrate_scopes s WHERE s.kind = 'n')
        INSERT INTO __anonmigrate_scopes (kind, class, oid)
        SELECT 'r', 0, c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT o FROM nsps)
        UNION SELECT 't', 0, ty.oid FROM pg_type ty WHERE ty.typnamespace IN (SELECT o FROM nsps)
        UNION SELECT 'p', 0, pr.oid FROM pg_proc pr WHERE pr.pronamespace IN (SELECT o FROM nsps);
    END IF;

    RETURN QUERY SELECT 'raw'::text, '', '', '', '', '', 'raw', 0::bigint, s.class::bigint, s.oid::bigint
        FROM __anonmigrate_scopes s WHERE s.kind = 'raw';
    RETURN QUERY SELECT DISTINCT 'scope'::text, '', '', '', '', '', s.kind, s.oid::bigint, 0::bigint, 0::bigint
        FROM __anonmigrate_scopes s WHERE s.kind <> 'raw';
    SELECT array_agg(DISTINCT s.kind) INTO kinds FROM __anonmigrate_scopes s WHERE s.kind <> 'raw';
    /*rows of each scope kind*/
END
