//! `cargo anonmigrate schema`: schema.rs as a function of the migration chain alone.
//!
//! The chain is replayed into a scratch database ([`scratch`], always dropped), its catalogs are read in a fixed
//! number of queries ([`introspect`] → [`model::Catalog`]), and each configured file is rendered by a pure
//! function ([`render`]) that writes what `diesel print-schema` (diesel_cli 2.3) writes for the same
//! `[print_schema]` settings ([`config`]). Files are rewritten only when their content changes, and the lock file
//! records what each was generated from, for the build-script drift gate.
//!
//! API for other commands (`check`, the drift gate): [`replay`] gives the chain's catalog, [`render_sections`] the
//! expected files, [`introspect::read`] the catalog of any live database.

pub mod autogen;
pub mod compare;
pub mod config;
pub mod fingerprint;
pub mod introspect;
pub mod model;
mod names;
pub mod parse;
pub mod render;
pub mod scratch;
pub mod touched;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anonmigrate_chain::{Chain, LockFile};

use crate::config::Workspace;
use crate::error::{Error, Result};
use crate::events::{Event, Observer};
use crate::runner::RunOptions;
use config::SchemaConfig;
use model::{Catalog, QualifiedName};

/// Where the time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Creating the scratch database and applying every migration to it.
    pub replay: Duration,
    /// Reading the catalogs.
    pub catalog: Duration,
    /// Rendering every section.
    pub render: Duration,
    /// Migrations taken from a template copy instead of being applied.
    pub copied: usize,
    /// Migrations in the chain.
    pub migrations: usize,
    /// The template copy was made in advance (by the previous replay) and claimed.
    pub spare: bool,
}

/// One rendered section.
#[derive(Debug, Clone)]
pub struct SchemaFile {
    /// `default`, or the `<key>` of `[print_schema.<key>]`.
    pub key: String,
    /// Where it belongs; `None` for a section that names no file.
    pub path: Option<PathBuf>,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub files: Vec<SchemaFile>,
    pub catalog: Catalog,
    pub timings: Timings,
}

impl Generated {
    /// Every section one after the other, as `diesel print-schema` prints them.
    pub fn printed(&self) -> String {
        self.files.iter().map(|f| f.content.as_str()).collect()
    }
}

/// Replays the chain on the workspace's server (the configured one, else the managed local server) and reads the
/// catalogs of `schemas`: on a copy of the chain's template database when there is one, else by applying the
/// migrations after the longest cached prefix ([`crate::template`]). Scratch copies are dropped before this
/// returns, whether it succeeds or not.
pub fn replay(workspace: &Workspace, chain: &Chain, schemas: &[String], observer: &mut dyn Observer) -> Result<(Catalog, Timings)> {
    let mut observer = crate::template::Quiet(observer);
    let server = crate::target::server(workspace, Some(chain), &mut observer)?;
    let started = Instant::now();
    let cache = template_cache(workspace, &server)?;
    let mut catalog_time = Duration::ZERO;
    let (catalog, replay) = cache.with_head(chain, &mut observer, |url| {
        let started = Instant::now();
        let mut conn = crate::db::connect(url)?;
        let catalog = introspect::read(&mut conn, schemas)?;
        catalog_time = started.elapsed();
        Ok(catalog)
    })?;
    let timings = Timings {
        replay: started.elapsed().saturating_sub(catalog_time),
        catalog: catalog_time,
        render: Duration::ZERO,
        copied: replay.copied,
        migrations: replay.migrations,
        spare: replay.from_spare,
    };
    Ok((catalog, timings))
}

/// The template cache of `workspace` on `server`, with the workspace's lock timeouts for the migrations it applies.
pub fn template_cache(workspace: &Workspace, server: &crate::database_url::DatabaseUrl) -> Result<crate::template::TemplateCache> {
    let options = RunOptions {
        lock_timeout: workspace.run_lock_timeout()?,
        ddl_lock_timeout: workspace.ddl_lock_timeout()?,
        ..RunOptions::default()
    };
    let label = workspace.root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(crate::template::TemplateCache::new(server, &label, &workspace.root.display().to_string(), options))
}

/// Renders every section of `config`, and reports (once each) the tables left out for lack of a primary key.
pub fn render_sections(catalog: &Catalog, config: &SchemaConfig, observer: &mut dyn Observer) -> Result<Vec<SchemaFile>> {
    let mut files = Vec::new();
    let mut reported: Vec<QualifiedName> = Vec::new();
    for section in &config.sections {
        let rendered = render::render(catalog, &section.settings)?;
        for table in rendered.tables_without_primary_key {
            if !reported.contains(&table) {
                observer.event(Event::Warning(no_primary_key_warning(&table)));
                reported.push(table);
            }
        }
        files.push(SchemaFile {
            key: section.key.clone(),
            path: section.file.clone(),
            content: rendered.text,
        });
    }
    Ok(files)
}

/// `name` as SQL needs it: bare when it is a plain lowercase identifier that is not a keyword PostgreSQL refuses
/// as a column or table name (`order`, `user`, `left`...), else quoted.
fn sql_identifier(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && RESERVED_KEYWORDS.binary_search(&name).is_err();
    if plain { name.to_owned() } else { crate::db::quote_ident(name) }
}

/// PostgreSQL's keywords that cannot name a column or table unquoted: the "reserved" ones and the "reserved (can
/// be function or type)" ones (grammar categories `reserved_keyword` and `type_func_name_keyword`, PostgreSQL
/// 13 to 18). Sorted, for `binary_search`.
const RESERVED_KEYWORDS: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary", "both",
    "case", "cast", "check", "collate", "collation", "column", "concurrently", "constraint", "create", "cross",
    "current_catalog", "current_date", "current_role", "current_schema", "current_time", "current_timestamp",
    "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false", "fetch",
    "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike", "in", "initially", "inner",
    "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left", "like", "limit", "localtime",
    "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only", "or", "order", "outer", "overlaps",
    "placing", "primary", "references", "returning", "right", "select", "session_user", "similar", "some", "symmetric",
    "system_user", "table", "tablesample", "then", "to", "trailing", "true", "union", "unique", "user", "using",
    "variadic", "verbose", "when", "where", "window", "with",
];

fn no_primary_key_warning(table: &QualifiedName) -> String {
    let name = match table.schema.as_str() {
        "public" => sql_identifier(&table.name),
        schema => format!("{}.{}", sql_identifier(schema), sql_identifier(&table.name)),
    };
    let pattern = regex::escape(&table.name).replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        "table `{table}` has no primary key, so diesel cannot use it: it is left out of schema.rs (diesel print-schema would fail on it); \
         add one in a new migration (`ALTER TABLE {name} ADD PRIMARY KEY (...)`, or an `id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY` column), \
         or leave it out on purpose with `filter = {{ except_tables = [\"^{pattern}$\"] }}` under [print_schema] in diesel.toml"
    )
}

/// Replays the chain and renders every configured section.
pub fn generate(workspace: &Workspace, chain: &Chain, config: &SchemaConfig, observer: &mut dyn Observer) -> Result<Generated> {
    let (catalog, mut timings) = replay(workspace, chain, &config.pg_schemas(), observer)?;
    let started = Instant::now();
    let files = render_sections(&catalog, config, observer)?;
    timings.render = started.elapsed();
    Ok(Generated { files, catalog, timings })
}

/// Renders every section from a live database instead of the chain (what `diesel print-schema` does): for a
/// look at a database, not for writing schema.rs, which must follow from the chain alone.
pub fn from_database(url: &crate::database_url::DatabaseUrl, config: &SchemaConfig, observer: &mut dyn Observer) -> Result<Generated> {
    let started = Instant::now();
    let catalog = {
        let mut conn = crate::db::connect(url)?;
        introspect::read(&mut conn, &config.pg_schemas())?
    };
    let catalog_time = started.elapsed();
    let started = Instant::now();
    let files = render_sections(&catalog, config, observer)?;
    Ok(Generated {
        files,
        catalog,
        timings: Timings {
            catalog: catalog_time,
            render: started.elapsed(),
            ..Timings::default()
        },
    })
}

/// What [`write`] did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    /// False when the file already had this content (it is not touched then).
    pub changed: bool,
}

/// Writes each file that names a path (only when its content changed) and records it in the chain's lock file,
/// which the build-script drift gate reads. Unless `force`, a file with hand edits that the new content does not
/// explain is left alone and the whole write is refused ([`Error::HandEdited`]), before anything is written.
pub fn write(files: &[SchemaFile], chain: &Chain, force: bool) -> Result<Vec<Written>> {
    let previous = LockFile::read(&chain.dir)?.map(|(lock, _)| lock);
    if !force {
        for file in files {
            if let (Some(path), Some(previous)) = (&file.path, &previous) {
                refuse_unexplained_edits(path, &file.content, previous, chain)?;
            }
        }
    }
    let mut lock = LockFile::updated_for(chain, previous.as_ref());
    let mut written = Vec::new();
    for file in files {
        let Some(path) = &file.path else { continue };
        let changed = std::fs::read(path).ok().as_deref() != Some(file.content.as_bytes());
        if changed {
            write_file(path, &file.content)?;
        }
        lock.record_schema(anonmigrate_chain::drift::relative_path(&chain.dir, path), &file.content);
        written.push(Written {
            path: path.clone(),
            changed,
        });
    }
    if previous.as_ref().map(LockFile::render) != Some(lock.render()) {
        lock.write(&chain.dir)?;
    }
    Ok(written)
}

/// Refuses to overwrite hand edits of `path` (its differences from what the lock file recorded at generation)
/// that nothing explains: when no migration changed since generation, any edit is unexplained (the README's
/// "edit schema.rs, then autogenerate" workflow must not lose it); when migrations changed, an edit is explained
/// if the new content has it too (compared as diesel sees it; the new content may order columns differently).
fn refuse_unexplained_edits(path: &Path, new: &str, previous: &LockFile, chain: &Chain) -> Result<()> {
    let Ok(current) = std::fs::read_to_string(path) else { return Ok(()) };
    if current == new {
        return Ok(());
    }
    let key = anonmigrate_chain::drift::relative_path(&chain.dir, path);
    let Some(record) = previous.schemas.iter().find(|r| r.path == key) else {
        // Never generated by us (a diesel-generated or hand-written file): nothing to tell edits from.
        return Ok(());
    };
    let edits = anonmigrate_chain::drift::hand_edits(record, &current);
    if edits.is_empty() {
        return Ok(());
    }
    let chain_changed = record.chain != LockFile::from_chain(chain).chain_hash();
    if chain_changed && !loses_edits(&current, new) {
        return Ok(());
    }
    Err(Error::HandEdited {
        path: path.to_path_buf(),
        edits: edits.iter().map(ToString::to_string).collect(),
    })
}

/// Whether replacing `current` with `new` drops something `current` says: a table, column, type, length, key
/// or `joinable!` that `new` lacks or spells differently. Things only `new` has (what new migrations add) and
/// column order are not losses. A file that does not parse is treated as losing edits.
fn loses_edits(current: &str, new: &str) -> bool {
    use compare::Difference;
    let (Ok(current), Ok(new)) = (parse::parse_schema_rs(current), parse::parse_schema_rs(new)) else {
        return true;
    };
    compare::compare(&current, &new).iter().any(|d| {
        !matches!(
            d,
            Difference::TableMissing { .. }
                | Difference::ColumnMissing { .. }
                | Difference::JoinableMissing { .. }
                | Difference::ColumnOrder { .. }
        )
    })
}

fn write_file(path: &Path, content: &str) -> Result<()> {
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    // A crash mid-write must not leave a truncated schema.rs that no longer compiles.
    anonmigrate_chain::write_atomically(path, content).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_quoted_and_the_list_stays_sorted() {
        assert!(RESERVED_KEYWORDS.windows(2).all(|w| w[0] < w[1]), "RESERVED_KEYWORDS must stay sorted");
        assert_eq!(sql_identifier("order"), "\"order\"");
        assert_eq!(sql_identifier("user"), "\"user\"");
        assert_eq!(sql_identifier("orders"), "orders");
        assert_eq!(sql_identifier("Mixed"), "\"Mixed\"");
    }

    #[test]
    fn the_no_primary_key_warning_quotes_what_needs_quoting() {
        let plain = no_primary_key_warning(&QualifiedName::new("public", "raw_events"));
        assert!(plain.contains("`ALTER TABLE raw_events ADD PRIMARY KEY (...)`"), "{plain}");
        assert!(plain.contains(r#"except_tables = ["^raw_events$"]"#), "{plain}");
        let odd = no_primary_key_warning(&QualifiedName::new("app", "odd;Table"));
        assert!(odd.contains(r#"`ALTER TABLE app."odd;Table" ADD PRIMARY KEY (...)`"#), "{odd}");
        let dotted = no_primary_key_warning(&QualifiedName::new("public", "a.b"));
        assert!(dotted.contains(r#"except_tables = ["^a\\.b$"]"#), "{dotted}");
    }
}
