//! What to generate: diesel.toml's `[print_schema]` (and `[print_schema.<key>]`) sections with diesel_cli 2.3's
//! meaning, `[workspace.metadata.anonmigrate] schema-file`, the pgvector defaults, and the few rustfmt settings
//! the output layout follows.
//!
//! Precedence: when diesel.toml has a `[print_schema]` table, it is used exactly as diesel uses it (so both tools
//! write the same file). Otherwise there is one section with anonmigrate's defaults: diesel's, plus pgvector's
//! `vector`/`halfvec`/`sparsevec`/`bit` mapped to `pgvector::sql_types`, written to `schema-file` if that is set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::config::Workspace;
use crate::error::{Error, Result};

/// `with_docs`: which doc comments to put on tables, columns and custom types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocMode {
    #[default]
    None,
    /// Only `COMMENT ON` text.
    OnlyDatabaseComments,
    /// `COMMENT ON` text, else a generated sentence (`with_docs = true`).
    DatabaseCommentsFallback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColumnSorting {
    #[default]
    OrdinalPosition,
    Name,
}

/// `allow_tables_to_appear_in_same_query_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableGrouping {
    #[default]
    AllTables,
    FkRelatedTables,
    None,
}

/// `filter`: regexes matched (unanchored) against table names.
#[derive(Debug, Clone, Default)]
pub enum Filter {
    #[default]
    None,
    OnlyTables(Vec<Regex>),
    ExceptTables(Vec<Regex>),
}

impl Filter {
    pub fn keeps(&self, table: &str) -> bool {
        match self {
            Filter::None => true,
            Filter::OnlyTables(regexes) => regexes.iter().any(|r| r.is_match(table)),
            Filter::ExceptTables(regexes) => !regexes.iter().any(|r| r.is_match(table)),
        }
    }
}

/// A SQL type mapped to a type some crate provides, instead of a generated `sql_types` struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalType {
    /// PostgreSQL type name, any schema.
    pub sql_name: String,
    /// The name the column definitions use.
    pub rust_name: String,
    /// What the table imports (`use <path>;`).
    pub path: String,
    /// Only in a schema that has a pgvector column: for PostgreSQL's own `bit`, which diesel writes as a `Bit` it
    /// does not define; a schema without pgvector keeps diesel's output exactly.
    pub only_with_pgvector: bool,
}

/// The types only pgvector defines; a column of one means the schema uses pgvector.
pub const PGVECTOR_SQL_TYPES: &[&str] = &["vector", "halfvec", "sparsevec"];

/// The pgvector crate's diesel types, used when no `[print_schema]` is configured.
pub fn pgvector_types() -> Vec<ExternalType> {
    [("vector", "Vector"), ("halfvec", "HalfVector"), ("sparsevec", "SparseVector"), ("bit", "Bit")]
        .into_iter()
        .map(|(sql, rust)| ExternalType {
            sql_name: sql.to_owned(),
            rust_name: rust.to_owned(),
            path: format!("pgvector::sql_types::{rust}"),
            only_with_pgvector: !PGVECTOR_SQL_TYPES.contains(&sql),
        })
        .collect()
}

/// The rustfmt settings the output follows (diesel pipes its output through rustfmt; we lay it out the same
/// way directly). Supported in rustfmt.toml: `max_width`, `use_small_heuristics`, `fn_call_width`,
/// `attr_fn_like_width`, `short_array_element_width_threshold`. Other rustfmt settings do not change generated schema files in
/// practice, or are not supported (`hard_tabs`, `tab_spaces`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub max_width: usize,
    pub fn_call_width: usize,
    pub attr_fn_like_width: usize,
    pub short_array_element_width_threshold: usize,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout::for_max_width(100, "Default")
    }
}

impl Layout {
    fn for_max_width(max_width: usize, heuristics: &str) -> Layout {
        // rustfmt scales its width heuristics up (never down) with max_width, in steps of a tenth.
        let ratio = if max_width > 100 { (max_width as f64 / 100.0 * 10.0).round() / 10.0 } else { 1.0 };
        let scaled = |default: f64| match heuristics {
            "Off" | "Max" => max_width,
            _ => ((default * ratio).round() as usize).min(max_width),
        };
        Layout {
            max_width,
            fn_call_width: scaled(60.0),
            attr_fn_like_width: scaled(70.0),
            short_array_element_width_threshold: 10,
        }
    }

    /// The layout for a project: the first rustfmt.toml / .rustfmt.toml in `dir` or its ancestors, as rustfmt
    /// (run by diesel from that directory) would find it.
    pub fn discover(dir: &Path) -> Result<Layout> {
        for candidate in dir.ancestors() {
            for name in ["rustfmt.toml", ".rustfmt.toml"] {
                let path = candidate.join(name);
                if let Ok(text) = std::fs::read_to_string(&path) {
                    return Layout::parse(&text).map_err(|e| Error::Config(format!("cannot read `{}`: {e}", path.display())));
                }
            }
        }
        Ok(Layout::default())
    }

    pub fn parse(text: &str) -> std::result::Result<Layout, String> {
        #[derive(Deserialize)]
        struct Rustfmt {
            max_width: Option<usize>,
            use_small_heuristics: Option<String>,
            fn_call_width: Option<usize>,
            attr_fn_like_width: Option<usize>,
            short_array_element_width_threshold: Option<usize>,
        }
        let parsed: Rustfmt = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut layout = Layout::for_max_width(
            parsed.max_width.unwrap_or(100),
            parsed.use_small_heuristics.as_deref().unwrap_or("Default"),
        );
        if let Some(width) = parsed.fn_call_width {
            layout.fn_call_width = width.min(layout.max_width);
        }
        if let Some(width) = parsed.attr_fn_like_width {
            layout.attr_fn_like_width = width.min(layout.max_width);
        }
        if let Some(threshold) = parsed.short_array_element_width_threshold {
            layout.short_array_element_width_threshold = threshold;
        }
        Ok(layout)
    }
}

/// How one schema file is rendered: every `[print_schema]` setting, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub with_docs: DocMode,
    pub column_sorting: ColumnSorting,
    pub filter: Filter,
    /// The PostgreSQL schema to read; `None` is `public` without a wrapping `pub mod`.
    pub schema: Option<String>,
    /// A unified diff applied to the output, and where it came from (for messages).
    pub patch: Option<(PathBuf, String)>,
    pub import_types: Option<Vec<String>>,
    pub generate_missing_sql_type_definitions: bool,
    pub except_custom_type_definitions: Vec<Regex>,
    /// Derives of the generated `sql_types` structs; always ends with (or contains) `diesel::sql_types::SqlType`.
    pub custom_type_derives: Vec<String>,
    pub table_grouping: TableGrouping,
    pub pg_domains_as_custom_types: Vec<Regex>,
    /// anonmigrate's addition: types mapped to other crates' SQL types (the pgvector defaults).
    pub external_types: Vec<ExternalType>,
    pub layout: Layout,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            with_docs: DocMode::None,
            column_sorting: ColumnSorting::OrdinalPosition,
            filter: Filter::None,
            schema: None,
            patch: None,
            import_types: None,
            generate_missing_sql_type_definitions: true,
            except_custom_type_definitions: Vec::new(),
            custom_type_derives: vec![SQL_TYPE_DERIVE.to_owned()],
            table_grouping: TableGrouping::AllTables,
            pg_domains_as_custom_types: Vec::new(),
            external_types: Vec::new(),
            layout: Layout::default(),
        }
    }
}

const SQL_TYPE_DERIVE: &str = "diesel::sql_types::SqlType";

impl Settings {
    /// The PostgreSQL schema this section reads.
    pub fn pg_schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }
}

/// One schema file to generate (a `[print_schema]` or `[print_schema.<key>]` section).
#[derive(Debug, Clone)]
pub struct Section {
    /// `default` for `[print_schema]` itself, else the `<key>`.
    pub key: String,
    /// Where the file goes; a section without one is only printed.
    pub file: Option<PathBuf>,
    pub settings: Settings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `[print_schema]` in this diesel.toml.
    DieselToml(PathBuf),
    /// No `[print_schema]`: anonmigrate's defaults (with `schema-file`, if set).
    Defaults,
}

#[derive(Debug, Clone)]
pub struct SchemaConfig {
    pub origin: Origin,
    /// In diesel's order: by key.
    pub sections: Vec<Section>,
}

impl SchemaConfig {
    /// The sections that name a file.
    pub fn files(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| s.file.is_some())
    }

    /// The PostgreSQL schemas the sections read, without duplicates.
    pub fn pg_schemas(&self) -> Vec<String> {
        let mut schemas: Vec<String> = self.sections.iter().map(|s| s.settings.pg_schema().to_owned()).collect();
        schemas.sort();
        schemas.dedup();
        schemas
    }

    /// Reads the workspace's configuration: `--config-file`, `DIESEL_CONFIG_FILE` or `<root>/diesel.toml`, then
    /// `[workspace.metadata.anonmigrate] schema-file`, then rustfmt.toml for the layout.
    pub fn load(workspace: &Workspace) -> Result<SchemaConfig> {
        let diesel_toml = workspace.diesel_toml();
        let layout = Layout::discover(&workspace.root)?;
        let text = match std::fs::read_to_string(&diesel_toml) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Config(format!("cannot read `{}`: {e}", diesel_toml.display()))),
        };
        let config = match text {
            Some(text) => SchemaConfig::from_diesel_toml(&text, &diesel_toml, layout)?,
            None => None,
        };
        let schema_file = workspace.settings.schema_file.as_ref().map(|f| workspace.root.join(f));
        match (config, schema_file) {
            (Some(_), Some(_)) => Err(Error::Config(format!(
                "both `{}` [print_schema] and [workspace.metadata.anonmigrate] schema-file configure schema.rs; keep one (diesel.toml's also works for diesel_cli)",
                diesel_toml.display()
            ))),
            (Some(config), None) => Ok(config),
            (None, file) => Ok(SchemaConfig::defaults(file, layout)),
        }
    }

    /// anonmigrate's defaults: diesel's, plus the pgvector types.
    pub fn defaults(file: Option<PathBuf>, layout: Layout) -> SchemaConfig {
        SchemaConfig {
            origin: Origin::Defaults,
            sections: vec![Section {
                key: "default".into(),
                file,
                settings: Settings {
                    external_types: pgvector_types(),
                    layout,
                    ..Settings::default()
                },
            }],
        }
    }

    /// Parses diesel.toml; `None` when it has no `[print_schema]`. Relative paths are relative to its directory.
    pub fn from_diesel_toml(text: &str, path: &Path, layout: Layout) -> Result<Option<SchemaConfig>> {
        let bad = |e: String| Error::Config(format!("invalid `{}`: {e}; see diesel's [print_schema] documentation", path.display()));
        let document: toml::Table = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let Some(print_schema) = document.get("print_schema") else {
            return Ok(None);
        };
        let toml::Value::Table(print_schema) = print_schema else {
            return Err(bad("`print_schema` must be a table".into()));
        };
        let base = path.parent().unwrap_or(Path::new("."));

        // Like diesel: keys that are settings form the top-level section, any other key is a named section.
        let mut top = toml::Table::new();
        let mut named: BTreeMap<String, toml::Table> = BTreeMap::new();
        for (key, value) in print_schema {
            if SETTING_NAMES.contains(&key.as_str()) {
                top.insert(key.clone(), value.clone());
            } else if let toml::Value::Table(table) = value {
                named.insert(key.clone(), table.clone());
            } else {
                return Err(bad(format!(
                    "unknown setting `print_schema.{key}`; expected one of {}, or a `[print_schema.{key}]` table",
                    SETTING_NAMES.join(", ")
                )));
            }
        }
        let mut raw: BTreeMap<String, toml::Table> = BTreeMap::new();
        if named.is_empty() {
            raw.insert("default".into(), top);
        } else {
            raw.extend(named);
            raw.entry("default".into()).or_insert(top);
        }
        let mut sections = Vec::new();
        for (key, table) in raw {
            let name = if key == "default" { "print_schema".to_owned() } else { format!("print_schema.{key}") };
            let parsed: RawSection = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| bad(format!("[{name}]: {}", e.message())))?;
            let (file, settings) = parsed.resolve(base, layout).map_err(|e| bad(format!("[{name}]: {e}")))?;
            sections.push(Section { key, file, settings });
        }
        Ok(Some(SchemaConfig {
            origin: Origin::DieselToml(path.to_path_buf()),
            sections,
        }))
    }
}

const SETTING_NAMES: &[&str] = &[
    "file",
    "with_docs",
    "allow_tables_to_appear_in_same_query_config",
    "filter",
    "column_sorting",
    "schema",
    "patch_file",
    "import_types",
    "generate_missing_sql_type_definitions",
    "except_custom_type_definitions",
    "custom_type_derives",
    "sqlite_integer_primary_key_is_bigint",
    "pg_domains_as_custom_types",
];

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDocs {
    Flag(bool),
    Mode(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    only_tables: Option<Vec<String>>,
    except_tables: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    file: Option<PathBuf>,
    with_docs: Option<RawDocs>,
    allow_tables_to_appear_in_same_query_config: Option<String>,
    filter: Option<RawFilter>,
    column_sorting: Option<String>,
    schema: Option<String>,
    patch_file: Option<PathBuf>,
    import_types: Option<Vec<String>>,
    generate_missing_sql_type_definitions: Option<bool>,
    #[serde(default)]
    except_custom_type_definitions: Vec<String>,
    custom_type_derives: Option<Vec<String>>,
    /// SQLite only; accepted so a shared diesel.toml parses.
    #[allow(dead_code)]
    sqlite_integer_primary_key_is_bigint: Option<bool>,
    #[serde(default)]
    pg_domains_as_custom_types: Vec<String>,
}

fn regexes(setting: &str, patterns: &[String]) -> std::result::Result<Vec<Regex>, String> {
    patterns
        .iter()
        .map(|p| Regex::new(p).map_err(|e| format!("`{setting}` has an invalid regex `{p}`: {e}")))
        .collect()
}

impl RawSection {
    fn resolve(self, base: &Path, layout: Layout) -> std::result::Result<(Option<PathBuf>, Settings), String> {
        let with_docs = match self.with_docs {
            None | Some(RawDocs::Flag(false)) => DocMode::None,
            Some(RawDocs::Flag(true)) => DocMode::DatabaseCommentsFallback,
            Some(RawDocs::Mode(mode)) => match mode.as_str() {
                "database-comments-fallback-to-auto-generated-doc-comment" => DocMode::DatabaseCommentsFallback,
                "only-database-comments" => DocMode::OnlyDatabaseComments,
                "no-doc-comments" => DocMode::None,
                other => {
                    return Err(format!(
                        "`with_docs = \"{other}\"` is not a mode; use true, false, \"database-comments-fallback-to-auto-generated-doc-comment\", \"only-database-comments\" or \"no-doc-comments\""
                    ));
                }
            },
        };
        let table_grouping = match self.allow_tables_to_appear_in_same_query_config.as_deref() {
            None | Some("all_tables") => TableGrouping::AllTables,
            Some("fk_related_tables") => TableGrouping::FkRelatedTables,
            Some("none") => TableGrouping::None,
            Some(other) => {
                return Err(format!(
                    "`allow_tables_to_appear_in_same_query_config = \"{other}\"`: use \"all_tables\", \"fk_related_tables\" or \"none\""
                ));
            }
        };
        let column_sorting = match self.column_sorting.as_deref() {
            None | Some("ordinal_position") => ColumnSorting::OrdinalPosition,
            Some("name") => ColumnSorting::Name,
            Some(other) => return Err(format!("`column_sorting = \"{other}\"`: use \"ordinal_position\" or \"name\"")),
        };
        let filter = match self.filter.unwrap_or_default() {
            RawFilter { only_tables: Some(_), except_tables: Some(_) } => {
                return Err("`filter` can have only_tables or except_tables, not both".into());
            }
            RawFilter { only_tables: Some(p), .. } => Filter::OnlyTables(regexes("filter.only_tables", &p)?),
            RawFilter { except_tables: Some(p), .. } => Filter::ExceptTables(regexes("filter.except_tables", &p)?),
            RawFilter { .. } => Filter::None,
        };
        let patch = match self.patch_file {
            None => None,
            Some(path) => {
                let path = base.join(path);
                let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read patch_file `{}`: {e}", path.display()))?;
                Some((path, text))
            }
        };
        let mut custom_type_derives = self.custom_type_derives.unwrap_or_default();
        if !custom_type_derives.iter().any(|d| d == SQL_TYPE_DERIVE) {
            custom_type_derives.push(SQL_TYPE_DERIVE.to_owned());
        }
        let settings = Settings {
            with_docs,
            column_sorting,
            filter,
            schema: self.schema,
            patch,
            import_types: self.import_types,
            generate_missing_sql_type_definitions: self.generate_missing_sql_type_definitions.unwrap_or(true),
            except_custom_type_definitions: regexes("except_custom_type_definitions", &self.except_custom_type_definitions)?,
            custom_type_derives,
            table_grouping,
            pg_domains_as_custom_types: regexes("pg_domains_as_custom_types", &self.pg_domains_as_custom_types)?,
            external_types: Vec::new(),
            layout,
        };
        Ok((self.file.map(|f| base.join(f)), settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SchemaConfig {
        SchemaConfig::from_diesel_toml(text, Path::new("/p/diesel.toml"), Layout::default())
            .unwrap()
            .unwrap()
    }

    #[test]
    fn no_print_schema_means_defaults() {
        let config = SchemaConfig::from_diesel_toml("[migrations_directory]\ndir = \"m\"\n", Path::new("/p/diesel.toml"), Layout::default()).unwrap();
        assert!(config.is_none());
    }

    #[test]
    fn sections_and_paths() {
        let config = parse("[print_schema]\nfile = \"src/schema.rs\"\n");
        assert_eq!(config.sections.len(), 1);
        assert_eq!(config.sections[0].file.as_deref(), Some(Path::new("/p/src/schema.rs")));
        assert!(config.sections[0].settings.external_types.is_empty(), "diesel.toml means diesel's behaviour");

        let config = parse("[print_schema]\nwith_docs = true\n[print_schema.b]\nfile = \"b.rs\"\n[print_schema.a]\nschema = \"x\"\n");
        let keys: Vec<&str> = config.sections.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "default"]);
        assert_eq!(config.sections[2].settings.with_docs, DocMode::DatabaseCommentsFallback);
        assert_eq!(config.pg_schemas(), ["public", "x"]);
    }

    #[test]
    fn settings() {
        let s = &parse(
            "[print_schema]\nwith_docs = \"only-database-comments\"\nfilter = { except_tables = [\"^a\"] }\ncolumn_sorting = \"name\"\ncustom_type_derives = [\"Clone\"]\nallow_tables_to_appear_in_same_query_config = \"none\"\n",
        )
        .sections[0]
            .settings;
        assert_eq!(s.with_docs, DocMode::OnlyDatabaseComments);
        assert!(!s.filter.keeps("abc") && s.filter.keeps("bca"));
        assert_eq!(s.column_sorting, ColumnSorting::Name);
        assert_eq!(s.custom_type_derives, ["Clone", "diesel::sql_types::SqlType"]);
        assert_eq!(s.table_grouping, TableGrouping::None);
    }

    #[test]
    fn errors_name_the_setting() {
        for (text, needle) in [
            ("[print_schema]\nwith_docs = \"sometimes\"\n", "with_docs"),
            ("[print_schema]\nfilter = { only_tables = [\"(\"] }\n", "filter.only_tables"),
            ("[print_schema]\nfile = 3\n", "print_schema"),
            ("[print_schema]\nbogus = 1\n", "bogus"),
            ("[print_schema]\nfilter = { only_tables = [], except_tables = [] }\n", "not both"),
        ] {
            let e = SchemaConfig::from_diesel_toml(text, Path::new("/p/diesel.toml"), Layout::default()).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn rustfmt_layout() {
        assert_eq!(Layout::parse("").unwrap(), Layout::default());
        assert_eq!(Layout::default().fn_call_width, 60);
        let wide = Layout::parse("max_width = 120\n").unwrap();
        assert_eq!((wide.max_width, wide.fn_call_width, wide.attr_fn_like_width), (120, 72, 84));
        assert_eq!(Layout::parse("max_width = 80\n").unwrap().fn_call_width, 60);
        assert_eq!(Layout::parse("use_small_heuristics = \"Max\"\n").unwrap().fn_call_width, 100);
        assert_eq!(Layout::parse("edition = \"2021\"\nmax_width = 90\n").unwrap().max_width, 90);
    }
}
