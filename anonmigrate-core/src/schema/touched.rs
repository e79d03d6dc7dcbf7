//! `check`'s down.sql pass at a cost proportional to what each migration touches, not to the whole schema: event
//! triggers in the scratch database record every object DDL creates, alters or drops (`sql/touched.sql`, the body
//! of a PL/pgSQL function, turns them into fingerprint scopes: a table with its columns, indexes, constraints,
//! triggers...; a type; a function; a schema; an extension), and after each step only those scopes are read again
//! (`sql/fingerprint.sql` with oid filters). States are compared on the scopes changed since a [`Tracker::mark`];
//! everything else is unchanged by construction. Event triggers need a superuser: without one, each step reads the
//! whole fingerprint instead (the same comparison, at the old cost), and [`Tracker::linear`] says which it is.

use std::collections::{BTreeSet, HashMap};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::fingerprint::{self, Change, Fingerprint, Object};
use crate::db;
use crate::error::Result;

const FINGERPRINT_SQL: &str = include_str!("sql/fingerprint.sql");
const TOUCHED_SQL: &str = include_str!("sql/touched.sql");

const INSTALL_SQL: &str = "\
CREATE UNLOGGED TABLE __anonmigrate_touched (classid oid, objid oid);
CREATE UNLOGGED TABLE __anonmigrate_scopes (kind text, class oid, oid oid);
CREATE FUNCTION __anonmigrate_touched_end() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO __anonmigrate_touched SELECT classid, objid FROM pg_event_trigger_ddl_commands(); END $$;
CREATE FUNCTION __anonmigrate_touched_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO __anonmigrate_touched SELECT classid, objid FROM pg_event_trigger_dropped_objects(); END $$;
CREATE EVENT TRIGGER __anonmigrate_touched_end ON ddl_command_end EXECUTE FUNCTION __anonmigrate_touched_end();
CREATE EVENT TRIGGER __anonmigrate_touched_drop ON sql_drop EXECUTE FUNCTION __anonmigrate_touched_drop();";

const UNINSTALL_SQL: &str = "\
DROP EVENT TRIGGER IF EXISTS __anonmigrate_touched_end;
DROP EVENT TRIGGER IF EXISTS __anonmigrate_touched_drop;
DROP FUNCTION IF EXISTS __anonmigrate_touched_end();
DROP FUNCTION IF EXISTS __anonmigrate_touched_drop();
DROP FUNCTION IF EXISTS __anonmigrate_refresh();
DROP TABLE IF EXISTS __anonmigrate_touched;
DROP TABLE IF EXISTS __anonmigrate_scopes;";

/// The function that reads what changed and the fingerprint of those scopes in one round trip.
const REFRESH_STATEMENT: &str = "__anonmigrate_refresh";

/// The body of [`REFRESH_STATEMENT`]: `sql/touched.sql` with fingerprint.sql narrowed to each scope kind where it
/// says so. A narrowed copy keeps its own kind's oid filter and turns the other kinds' filters to FALSE, so the
/// planner drops their branches and each `RETURN QUERY` (planned once per session, without parameters) does only
/// its kind's work. The function returns the touched rows (`row_type` `raw`), the scopes they give (`scope`) and
/// the fingerprint rows of those scopes (`obj`).
fn refresh_sql() -> String {
    let mut rows = String::new();
    for (_, kind, _) in SCOPE_MARKERS {
        let narrowed = fingerprint_sql_filtered(|marker_kind, column| {
            if marker_kind == kind {
                format!("{column} IN (SELECT s.oid FROM __anonmigrate_scopes s WHERE s.kind = '{kind}')")
            } else {
                "FALSE".to_owned()
            }
        });
        let body = narrowed.trim_end().trim_end_matches("ORDER BY 1, 2, 4, 3").trim_end();
        let body = &body[body.find("WITH ").expect("fingerprint.sql starts with WITH")..];
        rows.push_str(&format!("    IF '{kind}' = ANY (kinds) THEN\n        RETURN QUERY SELECT 'obj'::text, f.* FROM ({body}) f;\n    END IF;\n"));
    }
    let slot = "    /*rows of each scope kind*/\n";
    assert!(TOUCHED_SQL.contains(slot), "touched.sql has its slot");
    TOUCHED_SQL.replace(slot, &rows)
}

/// fingerprint.sql's scope markers: each `/*…*/TRUE` is where one scope kind (`r`, `t`, `p`, `n`, `e`) can be
/// narrowed by its oid column.
const SCOPE_MARKERS: [(&str, char, &str); 5] = [
    ("/*rel*/TRUE", 'r', "c.oid"),
    ("/*typ*/TRUE", 't', "t.oid"),
    ("/*proc*/TRUE", 'p', "p.oid"),
    ("/*nsp*/TRUE", 'n', "n.oid"),
    ("/*ext*/TRUE", 'e', "e.oid"),
];

/// fingerprint.sql with each scope kind's marker replaced by `filter(kind, oid column)`.
fn fingerprint_sql_filtered(filter: impl Fn(char, &str) -> String) -> String {
    SCOPE_MARKERS.iter().fold(FINGERPRINT_SQL.to_owned(), |sql, (marker, kind, column)| sql.replace(marker, &filter(*kind, column)))
}

/// The catalogs whose rows are scopes of their own (fixed oids in every PostgreSQL).
const PG_CLASS: i64 = 1259;
const PG_TYPE: i64 = 1247;
const PG_PROC: i64 = 1255;
const PG_NAMESPACE: i64 = 2615;
const PG_EXTENSION: i64 = 3079;

/// The catalogs whose objects the fingerprint covers, each object with its scope: pg_class, pg_type, pg_proc,
/// pg_namespace, pg_extension, pg_constraint, pg_trigger, pg_policy, pg_rewrite, pg_attrdef; and 0, which event
/// triggers report for `GRANT` and `REVOKE`.
const FINGERPRINTED_CATALOGS: [i64; 11] = [PG_CLASS, PG_TYPE, PG_PROC, PG_NAMESPACE, PG_EXTENSION, 2606, 2620, 3256, 2618, 2604, 0];

/// A fingerprint scope: `r` relation, `t` type, `p` function, `n` schema, `e` extension; and its oid.
type Scope = (char, i64);
/// The catalog row an object is: (catalog oid, row oid).
type Own = (i64, i64);

#[derive(QueryableByName)]
struct ScopedRow {
    #[diesel(embed)]
    object: Object,
    #[diesel(sql_type = Text)]
    scope_kind: String,
    #[diesel(sql_type = BigInt)]
    scope_oid: i64,
    #[diesel(sql_type = BigInt)]
    own_class: i64,
    #[diesel(sql_type = BigInt)]
    own_oid: i64,
}

#[derive(QueryableByName)]
struct RefreshRow {
    #[diesel(sql_type = Text)]
    row_type: String,
    #[diesel(embed)]
    row: ScopedRow,
}

type Rows = Vec<(Object, Own)>;

/// The fingerprint of one scratch database, kept up to date step by step.
#[derive(Debug, Default)]
pub struct Tracker {
    current: HashMap<Scope, Rows>,
    owners: HashMap<Own, Scope>,
    /// Each mark: the scopes changed since it was set, with their rows at that moment.
    marks: Vec<HashMap<Scope, Rows>>,
    linear: bool,
    /// Scopes read again, over all steps (for the benchmark's "proportional to what is touched").
    pub scopes_read: usize,
    /// The catalogs of every object touched since [`Tracker::take_touched_catalogs`] was last called.
    touched_catalogs: BTreeSet<i64>,
}

/// A point to compare the state with later.
#[derive(Debug, Clone, Copy)]
pub struct Mark(usize);

/// What one step did: the objects of the scopes it touched, before and after it.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    pub before: Fingerprint,
    pub after: Fingerprint,
}

impl Tracker {
    /// Installs the event triggers (when the role may) and reads the whole fingerprint once.
    pub fn start(conn: &mut PgConnection) -> Result<Tracker> {
        let linear = db::execute(conn, &format!("BEGIN;\n{INSTALL_SQL}\nCOMMIT;")).is_ok();
        if linear {
            // A PL/pgSQL function plans its query once per session; its SET clauses (for its own run only) keep
            // the plan on the catalogs' indexes, since the planner cannot know how few scopes each step touches.
            let function = format!(
                "CREATE FUNCTION {REFRESH_STATEMENT}() RETURNS TABLE (row_type text, kind text, schema_name text, name text, parent text, \
                 definition text, scope_kind text, scope_oid bigint, own_class bigint, own_oid bigint) LANGUAGE plpgsql \
                 SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $fn$ {} $fn$",
                refresh_sql()
            );
            db::execute(conn, &function).map_err(db::context("preparing the down.sql check's catalog reads"))?;
        } else {
            let _ = db::execute(conn, "ROLLBACK");
        }
        let mut tracker = Tracker { linear, ..Tracker::default() };
        let rows = read(conn, None)?;
        tracker.replace(all_scopes(&rows), rows);
        Ok(tracker)
    }

    /// Whether steps cost what they touch (event triggers installed), or a whole read each.
    pub fn linear(&self) -> bool {
        self.linear
    }

    /// Removes the event triggers and their table and functions from the database.
    pub fn stop(&self, conn: &mut PgConnection) -> Result<()> {
        if self.linear {
            db::execute(conn, UNINSTALL_SQL).map_err(db::context("removing the down.sql check's event triggers"))?;
        }
        Ok(())
    }

    /// Reads again what changed since the last call.
    pub fn refresh(&mut self, conn: &mut PgConnection) -> Result<()> {
        if !self.linear {
            let rows = read(conn, None)?;
            let mut scopes = all_scopes(&rows);
            scopes.extend(self.current.keys().copied());
            self.replace(scopes, rows);
            return Ok(());
        }
        let rows: Vec<RefreshRow> = diesel::sql_query(format!("SELECT * FROM {REFRESH_STATEMENT}()"))
            .load(conn)
            .map_err(|e| db::context("reading what the migration touched")(db::pg_error(&e)))?;
        let mut refreshed = BTreeSet::new();
        let mut dropped = Vec::new();
        let mut objects = Vec::new();
        for RefreshRow { row_type, row } in rows {
            match row_type.as_str() {
                "obj" => objects.push(row),
                "scope" => {
                    refreshed.insert((row.scope_kind.chars().next().unwrap_or('?'), row.scope_oid));
                }
                _ => {
                    self.touched_catalogs.insert(row.own_class);
                    dropped.push((row.own_class, row.own_oid));
                }
            }
        }
        // Dropped objects are gone from the catalogs: a dropped scope is empty now, and the scope that held a
        // dropped child (an index, a constraint) is read again, in a second round trip when the first missed it.
        let mut missed = BTreeSet::new();
        for (class, oid) in dropped {
            let own_scope = match class {
                PG_CLASS => Some('r'),
                PG_TYPE => Some('t'),
                PG_PROC => Some('p'),
                PG_NAMESPACE => Some('n'),
                PG_EXTENSION => Some('e'),
                _ => None,
            };
            if let Some(kind) = own_scope {
                refreshed.insert((kind, oid));
            }
            if let Some(scope) = self.owners.get(&(class, oid)) {
                missed.insert(*scope);
            }
        }
        missed.retain(|scope| !refreshed.contains(scope));
        if !missed.is_empty() {
            objects.extend(read(conn, Some(&missed))?);
            refreshed.extend(missed);
        }
        if !refreshed.is_empty() {
            self.replace(refreshed, objects);
        }
        Ok(())
    }

    fn replace(&mut self, scopes: BTreeSet<Scope>, rows: Vec<ScopedRow>) {
        self.scopes_read += scopes.len();
        let mut fresh: HashMap<Scope, Rows> = HashMap::new();
        for row in rows {
            let scope = (row.scope_kind.chars().next().unwrap_or('?'), row.scope_oid);
            fresh.entry(scope).or_default().push((row.object, (row.own_class, row.own_oid)));
        }
        for scope in scopes {
            let new = fresh.remove(&scope).unwrap_or_default();
            let old = self.current.remove(&scope).unwrap_or_default();
            for mark in &mut self.marks {
                mark.entry(scope).or_insert_with(|| old.clone());
            }
            for (_, own) in &old {
                if self.owners.get(own) == Some(&scope) {
                    self.owners.remove(own);
                }
            }
            for (_, own) in &new {
                self.owners.insert(*own, scope);
            }
            if !new.is_empty() {
                self.current.insert(scope, new);
            }
        }
    }

    /// The catalogs (by oid) of every object DDL touched since the last call; `None` without event triggers,
    /// when nobody can tell (the down.sql check then goes by the statements alone).
    pub fn take_touched_catalogs(&mut self) -> Option<BTreeSet<i64>> {
        let touched = std::mem::take(&mut self.touched_catalogs);
        self.linear.then_some(touched)
    }

    /// Whether every catalog in `catalogs` holds only objects the fingerprint covers (or, 0, none: `GRANT`).
    pub fn fingerprinted(catalogs: &BTreeSet<i64>) -> bool {
        catalogs.iter().all(|c| FINGERPRINTED_CATALOGS.contains(c))
    }

    /// Remembers the current state, for [`Tracker::changes_since`].
    pub fn mark(&mut self) -> Mark {
        self.marks.push(HashMap::new());
        Mark(self.marks.len() - 1)
    }

    /// Forgets every mark (the next [`Tracker::mark`] starts afresh).
    pub fn clear_marks(&mut self) {
        self.marks.clear();
    }

    /// How the state differs from what it was at `mark`, compared on the scopes changed since.
    pub fn changes_since(&self, mark: Mark) -> Vec<Change> {
        let delta = self.delta_since(mark);
        fingerprint::diff(&delta.before, &delta.after)
    }

    /// Every object of the scopes changed since `mark`, as it was then and as it is now: what a step did, kept
    /// by object (not by oid), so it stays comparable after the objects are dropped and made again.
    pub fn delta_since(&self, mark: Mark) -> Delta {
        let Some(changed) = self.marks.get(mark.0) else { return Delta::default() };
        let before = changed.values().flatten().map(|(o, _)| o.clone()).collect();
        let after = changed.keys().filter_map(|s| self.current.get(s)).flatten().map(|(o, _)| o.clone()).collect();
        Delta {
            before: Fingerprint::new(before),
            after: Fingerprint::new(after),
        }
    }

    /// The whole fingerprint as it stands.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::new(self.current.values().flatten().map(|(o, _)| o.clone()).collect())
    }
}

fn all_scopes(rows: &[ScopedRow]) -> BTreeSet<Scope> {
    rows.iter().map(|r| (r.scope_kind.chars().next().unwrap_or('?'), r.scope_oid)).collect()
}

/// The fingerprint rows of `scopes` (all when `None`).
fn read(conn: &mut PgConnection, scopes: Option<&BTreeSet<Scope>>) -> Result<Vec<ScopedRow>> {
    let sql = match scopes {
        None => FINGERPRINT_SQL.to_owned(),
        Some(scopes) => fingerprint_sql_filtered(|kind, column| {
            let oids: Vec<String> = scopes.iter().filter(|(k, _)| *k == kind).map(|(_, o)| o.to_string()).collect();
            // Numbers only: nothing from outside is spliced into the SQL.
            if oids.is_empty() { "FALSE".to_owned() } else { format!("{column} = ANY('{{{}}}'::oid[])", oids.join(",")) }
        }),
    };
    diesel::sql_query(sql)
        .load(conn)
        .map_err(|e| db::context("reading the schema fingerprint from the catalogs")(db::pg_error(&e)))
}
