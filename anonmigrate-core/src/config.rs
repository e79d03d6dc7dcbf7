//! Where things are and how to connect: the workspace (found by `discover`), `[workspace.metadata.anonmigrate]`,
//! `diesel.toml`, and the database URL (flag, environment, `.env`, or the managed local server).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::database_url::{DatabaseUrl, UrlSource};
use crate::error::{Error, Result};

/// What the command line (or a caller) says explicitly; everything else comes from files.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub manifest_path: Option<PathBuf>,
    pub migrations_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    /// `--direct-url`: the URL for commands that change the database.
    pub direct_url: Option<String>,
    /// diesel's `--config-file`: the diesel.toml to read instead of `DIESEL_CONFIG_FILE` or `<root>/diesel.toml`.
    pub config_file: Option<PathBuf>,
}

/// `[workspace.metadata.anonmigrate]`, all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MetadataSettings {
    /// Migrations directory, relative to the workspace root.
    pub migrations_dir: Option<PathBuf>,
    /// Extensions `setup` installs; default: those the chain creates with `CREATE EXTENSION`.
    pub extensions: Option<Vec<String>>,
    /// `lock_timeout` applied to migration statements, e.g. "10s"; "0" disables.
    pub ddl_lock_timeout: Option<String>,
    /// How long `run` waits for another runner's migration lock, e.g. "5m".
    pub lock_timeout: Option<String>,
    /// The server's own URL for commands that change the database, when DATABASE_URL goes through a pooler.
    /// A password is better kept in DIRECT_URL (environment or `.env`) than in a committed manifest.
    pub direct_url: Option<String>,
    /// `statement_timeout` of migration sessions, e.g. "15m"; default "0": none, whatever the role or database
    /// sets.
    pub statement_timeout: Option<String>,
    /// Database name on the managed local server.
    pub dev_database: Option<String>,
    /// PostgreSQL major version of the managed local server (`"18"`, the default, or `"16"`).
    pub postgres: Option<PostgresMajor>,
    /// `[workspace.metadata.anonmigrate.lint]`: rule levels and the baseline, parsed and validated by
    /// `anonmigrate-lint` (kept untyped here so the engine does not depend on the linter).
    pub lint: Option<serde_json::Value>,
    /// schema.rs that `cargo anonmigrate schema` writes, relative to the workspace root, when diesel.toml has
    /// no `[print_schema]`.
    pub schema_file: Option<PathBuf>,
    /// `[workspace.metadata.anonmigrate.fleet]`: the targets and pace of `cargo anonmigrate fleet`.
    pub fleet: Option<crate::fleet::FleetSettings>,
}

/// `postgres = "16"` or `postgres = 16`: both spellings mean the same.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PostgresMajor {
    Text(String),
    Number(u32),
}

#[derive(Debug, Default, Deserialize)]
struct DieselToml {
    migrations_directory: Option<DieselMigrationsDirectory>,
}

#[derive(Debug, Default, Deserialize)]
struct DieselMigrationsDirectory {
    dir: Option<PathBuf>,
}

/// A resolved workspace: paths and settings, nothing connected yet.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub migrations_dir: PathBuf,
    pub settings: MetadataSettings,
    pub overrides: Overrides,
}

const DEFAULT_DDL_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_RUN_LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// A `.env` line that does not parse, by number: dotenvy's own message quotes the whole line, which is where the
/// password is (`DATABASE_URL=postgres://u:secret@…` with a stray quote).
fn dotenv_error(path: &Path, error: &dotenvy::Error) -> Error {
    match error {
        dotenvy::Error::LineParse(line, index) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let number = text.find(line.as_str()).map_or(0, |at| text[..at].matches('\n').count() + 1);
            Error::Config(format!(
                "cannot parse `{}` line {number}, character {}: fix that line (an unclosed quote, or a space or `#` that needs quoting)",
                path.display(),
                index + 1
            ))
        }
        other => Error::Config(format!("cannot parse `{}`: {}; fix the line it names", path.display(), crate::database_url::redact_text(&other.to_string()))),
    }
}

impl Workspace {
    /// Finds the workspace the way cargo would, without running it (see [`crate::discover`]). Outside any Cargo
    /// project the current directory serves as the root, so the tool also works for a bare migrations folder.
    pub fn discover(overrides: Overrides) -> Result<Workspace> {
        let cwd = std::env::current_dir().map_err(|e| Error::Config(format!("cannot read the current directory: {e}")))?;
        let located = crate::discover::locate(&cwd, overrides.manifest_path.as_deref(), &crate::discover::Environment::current())?;
        let (root, target_dir, metadata_value) = match located {
            Some(found) => (found.root, found.target_dir, found.metadata),
            None => (cwd.clone(), cwd.join("target"), serde_json::Value::Null),
        };

        // A single-crate project has no workspace table: its `[package.metadata.anonmigrate]` is read instead.
        let table = match metadata_value.get("anonmigrate") {
            Some(value) => Some((value.clone(), "workspace")),
            None => package_metadata(&root)?.map(|value| (value, "package")),
        };
        let settings: MetadataSettings = match table {
            Some((value, kind)) => serde_json::from_value(value).map_err(|e| {
                Error::Config(format!(
                    "invalid [{kind}.metadata.anonmigrate] in {}: {e}; see the configuration reference in README.md",
                    root.join("Cargo.toml").display()
                ))
            })?,
            None => MetadataSettings::default(),
        };

        let migrations_dir = match (&overrides.migrations_dir, &settings.migrations_dir) {
            (Some(dir), _) => cwd.join(dir),
            (None, Some(dir)) => root.join(dir),
            (None, None) => diesel_migrations_dir(&diesel_toml_path(&root, &overrides), &root)?.unwrap_or_else(|| root.join("migrations")),
        };
        Ok(Workspace {
            root,
            target_dir,
            migrations_dir,
            settings,
            overrides,
        })
    }

    /// The database URL in force and where it came from; `None` means "use the managed local server".
    pub fn configured_url(&self) -> Result<Option<DatabaseUrl>> {
        let flag = self.overrides.database_url.as_ref().map(|raw| (raw.clone(), UrlSource::Flag));
        self.first_url(flag, "DATABASE_URL", UrlSource::Environment, UrlSource::DotEnv)
    }

    /// The direct URL (the server itself, not a pooler) for commands that change the database: `--direct-url`,
    /// DIRECT_URL in the environment or `.env`, or `direct-url` in `[workspace.metadata.anonmigrate]`.
    pub fn direct_url(&self) -> Result<Option<DatabaseUrl>> {
        let flag = self.overrides.direct_url.as_ref().map(|raw| (raw.clone(), UrlSource::DirectFlag));
        if let Some(url) = self.first_url(flag, "DIRECT_URL", UrlSource::DirectEnvironment, UrlSource::DirectDotEnv)? {
            return Ok(Some(url));
        }
        match &self.settings.direct_url {
            Some(raw) if !raw.trim().is_empty() => {
                DatabaseUrl::parse(raw, UrlSource::DirectMetadata(self.root.join("Cargo.toml"))).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The flag's URL, else the variable `key` from the environment, else from `<root>/.env`.
    fn first_url(
        &self,
        flag: Option<(String, UrlSource)>,
        key: &str,
        environment: UrlSource,
        dotenv: fn(PathBuf) -> UrlSource,
    ) -> Result<Option<DatabaseUrl>> {
        if let Some((raw, source)) = flag {
            return DatabaseUrl::parse(&raw, source).map(Some);
        }
        if let Ok(raw) = std::env::var(key)
            && !raw.trim().is_empty()
        {
            return DatabaseUrl::parse(&raw, environment).map(Some);
        }
        match self.dotenv_value(key)? {
            Some((value, path)) => DatabaseUrl::parse(&value, dotenv(path)).map(Some),
            None => Ok(None),
        }
    }

    /// `KEY` from `<root>/.env`, read without exporting: the file configures this tool, it must not leak into
    /// child processes.
    fn dotenv_value(&self, key: &str) -> Result<Option<(String, PathBuf)>> {
        let dotenv = self.root.join(".env");
        if !dotenv.is_file() {
            return Ok(None);
        }
        let entries = dotenvy::from_path_iter(&dotenv)
            .map_err(|e| Error::Config(format!("cannot read `{}`: {e}; fix the line it names", dotenv.display())))?;
        for entry in entries {
            let (name, value) = entry.map_err(|e| dotenv_error(&dotenv, &e))?;
            if name == key && !value.trim().is_empty() {
                return Ok(Some((value, dotenv)));
            }
        }
        Ok(None)
    }

    /// `statement_timeout` for migration sessions: `None` (no limit, the default) or the configured duration.
    pub fn statement_timeout(&self) -> Result<Option<Duration>> {
        match &self.settings.statement_timeout {
            None => Ok(None),
            Some(text) => {
                let d = parse_duration(text).map_err(|e| Error::Config(format!("statement-timeout: {e}")))?;
                Ok((!d.is_zero()).then_some(d))
            }
        }
    }

    pub fn ddl_lock_timeout(&self) -> Result<Option<Duration>> {
        match &self.settings.ddl_lock_timeout {
            None => Ok(Some(DEFAULT_DDL_LOCK_TIMEOUT)),
            Some(text) => {
                let d = parse_duration(text).map_err(|e| Error::Config(format!("ddl-lock-timeout: {e}")))?;
                Ok((!d.is_zero()).then_some(d))
            }
        }
    }

    pub fn run_lock_timeout(&self) -> Result<Duration> {
        match &self.settings.lock_timeout {
            None => Ok(DEFAULT_RUN_LOCK_TIMEOUT),
            Some(text) => parse_duration(text).map_err(|e| Error::Config(format!("lock-timeout: {e}"))),
        }
    }

    /// Database name on the managed local server: configured, or derived from the workspace directory name.
    pub fn dev_database(&self) -> String {
        if let Some(name) = &self.settings.dev_database {
            return name.clone();
        }
        let base = self.root.file_name().and_then(|n| n.to_str()).unwrap_or("app");
        let cleaned: String = base
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect();
        if cleaned.is_empty() { "app".into() } else { cleaned }
    }

    /// The PostgreSQL major version asked for (`ANONMIGRATE_POSTGRES`, else the `postgres` key), if any.
    pub fn postgres_major(&self) -> Result<Option<u32>> {
        let setting = self.settings.postgres.as_ref().map(|p| match p {
            PostgresMajor::Text(text) => text.clone(),
            PostgresMajor::Number(n) => n.to_string(),
        });
        crate::local_server::requested_major(setting.as_deref())
    }

    /// Where the managed development server keeps its data.
    pub fn dev_server_dir(&self) -> PathBuf {
        match std::env::var_os("ANONMIGRATE_SERVER_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => self.target_dir.join("anonmigrate").join("dev-server"),
        }
    }
}

/// `[package.metadata.anonmigrate]` of the root manifest, if it has one.
fn package_metadata(root: &Path) -> Result<Option<serde_json::Value>> {
    let manifest = root.join("Cargo.toml");
    let Ok(text) = std::fs::read_to_string(&manifest) else { return Ok(None) };
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::Config(format!("cannot parse `{}`: {e}; fix the TOML syntax", manifest.display())))?;
    let value = table.get("package").and_then(|p| p.get("metadata")).and_then(|m| m.get("anonmigrate"));
    Ok(value.and_then(|v| serde_json::to_value(v).ok()))
}

/// The diesel.toml in force, as diesel_cli picks it: `--config-file`, else `DIESEL_CONFIG_FILE` (relative to the
/// workspace root), else `<root>/diesel.toml`.
fn diesel_toml_path(root: &Path, overrides: &Overrides) -> PathBuf {
    match (&overrides.config_file, std::env::var_os("DIESEL_CONFIG_FILE")) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => root.join(path),
        (None, None) => root.join("diesel.toml"),
    }
}

impl Workspace {
    /// The diesel.toml in force (it may not exist).
    pub fn diesel_toml(&self) -> PathBuf {
        diesel_toml_path(&self.root, &self.overrides)
    }

    /// Whether diesel.toml is named explicitly (`--config-file`, `DIESEL_CONFIG_FILE`) rather than assumed.
    pub fn diesel_toml_is_explicit(&self) -> bool {
        self.overrides.config_file.is_some() || std::env::var_os("DIESEL_CONFIG_FILE").is_some()
    }
}

fn diesel_migrations_dir(path: &Path, root: &Path) -> Result<Option<PathBuf>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let parsed: DieselToml = toml::from_str(&text)
        .map_err(|e| Error::Config(format!("cannot parse `{}`: {e}; fix the TOML syntax", path.display())))?;
    Ok(parsed
        .migrations_directory
        .and_then(|m| m.dir)
        .map(|dir| root.join(dir)))
}

/// Parses `500ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. `500ms`, `10s`, `5m` or `0` to disable"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{text}`; use ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10 parsecs").is_err());
    }
}
