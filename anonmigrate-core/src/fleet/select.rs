//! Which targets a fleet command works on: databases of a server by name pattern, schemas of a database by name
//! pattern, a file of URLs, or a query that returns them, in a stable order (the canary is the first targets).

use std::path::PathBuf;

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};

use super::Target;
use crate::database_url::{DatabaseUrl, UrlSource};
use crate::db;
use crate::error::{Error, Result};

/// How the targets are chosen.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every database of the server whose name matches this SQL `LIKE` pattern, by name.
    DatabasesLike(String),
    /// Every schema of the database whose name matches, by name; each works with `search_path` = the schema,
    /// then `shared`.
    SchemasLike { pattern: String, shared: Vec<String> },
    /// One URL a line (`#` starts a comment), in file order.
    File(PathBuf),
    /// A query run on the database URL: one text column of URLs, or of database names on the same server.
    Query(String),
}

impl Selection {
    /// The flag that spells this selection, for messages.
    pub fn describe(&self) -> String {
        match self {
            Selection::DatabasesLike(p) => format!("--databases-like '{p}'"),
            Selection::SchemasLike { pattern, .. } => format!("--schemas-like '{pattern}'"),
            Selection::File(path) => format!("--targets {}", path.display()),
            Selection::Query(_) => "--targets-query".to_owned(),
        }
    }

    /// Whether the targets are found through the database URL (all but a file of URLs).
    pub fn needs_base(&self) -> bool {
        !matches!(self, Selection::File(_))
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn names(conn: &mut PgConnection, query: diesel::query_builder::BoxedSqlQuery<'_, diesel::pg::Pg, diesel::query_builder::SqlQuery>, what: &str) -> Result<Vec<String>> {
    query.load::<Name>(conn).map(|rows| rows.into_iter().map(|r| r.name).collect()).map_err(|e| db::context(what)(db::pg_error(&e)))
}

/// The targets of `selection`, found through `base` (the database URL) where it needs one. An empty result or a
/// target listed twice is an error: a rollout over nothing is almost always a wrong pattern.
pub fn select(selection: &Selection, base: Option<&DatabaseUrl>) -> Result<Vec<Target>> {
    let base_or_refuse = || {
        base.ok_or_else(|| Error::Config(format!("{} needs a database URL to look the targets up: pass --database-url", selection.describe())))
    };
    let targets = match selection {
        Selection::DatabasesLike(pattern) => {
            let base = base_or_refuse()?;
            let mut conn = db::connect(base)?;
            let query = diesel::sql_query(
                "SELECT datname::text AS name FROM pg_database WHERE datname LIKE $1 AND datallowconn AND NOT datistemplate ORDER BY datname COLLATE \"C\"",
            )
            .into_boxed()
            .bind::<Text, _>(pattern);
            names(&mut conn, query, "listing the databases")?
                .into_iter()
                .map(|name| Target { url: base.with_database(&name), name })
                .collect::<Vec<_>>()
        }
        Selection::SchemasLike { pattern, shared } => {
            let base = base_or_refuse()?;
            if shared.is_empty() {
                return Err(Error::Config("a schema-per-tenant fleet needs at least one shared schema (default `public`); set shared-schemas".into()));
            }
            let mut conn = db::connect(base)?;
            let query = diesel::sql_query(
                "SELECT nspname::text AS name FROM pg_namespace WHERE nspname LIKE $1 AND nspname NOT LIKE 'pg\\_%' \
                 AND nspname <> 'information_schema' AND nspname <> ALL($2) ORDER BY nspname COLLATE \"C\"",
            )
            .into_boxed()
            .bind::<Text, _>(pattern)
            .bind::<Array<Text>, _>(shared);
            names(&mut conn, query, "listing the schemas")?
                .into_iter()
                .map(|name| Target { url: base.with_tenant_schema(&name, shared), name })
                .collect()
        }
        Selection::File(path) => from_file(path)?,
        Selection::Query(sql) => {
            let base = base_or_refuse()?;
            let mut conn = db::connect(base)?;
            let query = diesel::sql_query(format!("SELECT x::text AS name FROM ({}) AS targets(x)", sql.trim().trim_end_matches(';'))).into_boxed();
            let values = names(&mut conn, query, "running --targets-query (it must return one text column of URLs or database names)")?;
            values
                .iter()
                .map(|value| {
                    if value.contains("://") {
                        let url = DatabaseUrl::parse(value, UrlSource::Flag)?;
                        Ok(Target { name: url.database(), url })
                    } else {
                        Ok(Target { url: base.with_database(value), name: value.clone() })
                    }
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    if targets.is_empty() {
        return Err(Error::Config(format!(
            "{} found no targets{}; check the pattern (SQL LIKE: `%` any text, `_` one character) or the list",
            selection.describe(),
            base.filter(|_| selection.needs_base()).map(|b| format!(" on {}", b.describe())).unwrap_or_default()
        )));
    }
    disambiguate(targets)
}

fn from_file(path: &PathBuf) -> Result<Vec<Target>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read the targets file {}: {e}; pass an existing file to --targets", path.display())))?;
    let mut targets = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split_once('#').map_or(line, |(before, _)| before).trim();
        if line.is_empty() {
            continue;
        }
        let url = DatabaseUrl::parse(line, UrlSource::Flag).map_err(|e| {
            Error::Config(format!("{} line {}: {e}", path.display(), number + 1))
        })?;
        targets.push(Target { name: url.database(), url });
    }
    Ok(targets)
}

/// Names stay the bare database (or schema) names unless two targets share one; then every name gets its
/// server. The same target twice is refused: it would be migrated by two jobs at once.
fn disambiguate(mut targets: Vec<Target>) -> Result<Vec<Target>> {
    let mut seen = std::collections::HashSet::new();
    for target in &targets {
        let key = (target.url.server(), target.url.database(), target.url.tenant().map(|t| t.schema.clone()));
        if !seen.insert(key) {
            return Err(Error::Config(format!("{} is listed twice among the targets; list each target once", target.url.describe())));
        }
    }
    let mut names = std::collections::HashSet::new();
    if !targets.iter().all(|t| names.insert(t.name.clone())) {
        for target in &mut targets {
            target.name = format!("{}/{}", target.url.server(), target.name);
        }
    }
    Ok(targets)
}
