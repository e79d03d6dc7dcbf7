//! Database URLs: accepting the spellings people have (`postgres://`, `postgresql://`, SQLAlchemy's
//! `postgresql+asyncpg://`), adding the connection parameters the tool relies on, and redacting passwords.

use url::Url;

use crate::error::{Error, Result};

/// Where the URL in use came from, so messages can say which file or variable to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlSource {
    Flag,
    Environment,
    DotEnv(std::path::PathBuf),
    LocalServer,
    DirectFlag,
    DirectEnvironment,
    DirectDotEnv(std::path::PathBuf),
    /// `direct-url` in `[workspace.metadata.anonmigrate]` of this manifest.
    DirectMetadata(std::path::PathBuf),
}

impl std::fmt::Display for UrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlSource::Flag => f.write_str("--database-url"),
            UrlSource::Environment => f.write_str("DATABASE_URL in the environment"),
            UrlSource::DotEnv(path) => write!(f, "DATABASE_URL in {}", path.display()),
            UrlSource::LocalServer => f.write_str("the managed local server"),
            UrlSource::DirectFlag => f.write_str("--direct-url"),
            UrlSource::DirectEnvironment => f.write_str("DIRECT_URL in the environment"),
            UrlSource::DirectDotEnv(path) => write!(f, "DIRECT_URL in {}", path.display()),
            UrlSource::DirectMetadata(path) => write!(f, "direct-url in [workspace.metadata.anonmigrate] of {}", path.display()),
        }
    }
}

/// A parsed, normalised PostgreSQL URL.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: Url,
    pub source: UrlSource,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("url", &self.redacted())
            .field("source", &self.source)
            .finish()
    }
}

impl DatabaseUrl {
    pub fn parse(raw: &str, source: UrlSource) -> Result<DatabaseUrl> {
        let raw = raw.trim();
        let bad = |reason: String| Error::BadUrl {
            url: redact_text(raw),
            source_name: source.to_string(),
            reason,
        };
        let scheme_end = raw
            .find("://")
            .ok_or_else(|| bad("expected `postgresql://user:password@host:port/database`".into()))?;
        let scheme = &raw[..scheme_end];
        // SQLAlchemy URLs name the Python driver after `+`; libpq only knows the plain scheme.
        let base_scheme = scheme.split('+').next().unwrap_or(scheme);
        if base_scheme != "postgres" && base_scheme != "postgresql" {
            return Err(bad(format!(
                "scheme `{scheme}` is not PostgreSQL; use `postgresql://` (postgres:// and postgresql+driver:// are accepted too)"
            )));
        }
        let normalised = format!("postgresql{}", &raw[scheme_end..]);
        let url = Url::parse(&normalised).map_err(|e| bad(e.to_string()))?;
        if url.path().trim_start_matches('/').is_empty() {
            return Err(bad("no database name in the path; add `/<database>` to the URL".into()));
        }
        Ok(DatabaseUrl { url, source })
    }

    pub fn database(&self) -> String {
        decode(self.url.path().trim_start_matches('/'))
    }

    /// The same server with another database (used for CREATE/DROP DATABASE, which must connect elsewhere).
    pub fn with_database(&self, database: &str) -> DatabaseUrl {
        let mut url = self.url.clone();
        url.set_path(&format!("/{}", encode_path_segment(database)));
        DatabaseUrl {
            url,
            source: self.source.clone(),
        }
    }

    /// The URL handed to libpq: adds `application_name` (visible in pg_stat_activity) and a bounded
    /// `connect_timeout` unless the user set them.
    pub fn libpq_url(&self, connect_timeout_secs: u64) -> String {
        let mut url = self.url.clone();
        let existing: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
        {
            let mut pairs = url.query_pairs_mut();
            if !existing.iter().any(|k| k == "application_name") {
                pairs.append_pair("application_name", "anonmigrate");
            }
            if !existing.iter().any(|k| k == "connect_timeout") {
                pairs.append_pair("connect_timeout", &connect_timeout_secs.to_string());
            }
        }
        url.to_string()
    }

    /// The URL with any password replaced by `***`, safe to print.
    pub fn redacted(&self) -> String {
        redact_text(self.url.as_str())
    }

    /// Human-readable `database on host` for one-line notices.
    pub fn describe(&self) -> String {
        let host = self
            .url
            .query_pairs()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.into_owned())
            .or_else(|| self.url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".into());
        format!("database `{}` on {}", self.database(), host)
    }
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

pub(crate) fn encode_path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

pub(crate) fn encode_query_value(text: &str) -> String {
    encode_path_segment(text)
}

/// Replaces passwords in any text that may contain URLs or `password=` conninfo pairs.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    redact_password_pairs(&out)
}

fn redact_password_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("password=") {
        let (before, after) = rest.split_at(pos + "password=".len());
        out.push_str(before);
        out.push_str("***");
        let end = after
            .find(|c: char| c == '&' || c.is_whitespace())
            .unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_sqlalchemy_and_plain_schemes() {
        for raw in [
            "postgres://u:secret@db:5432/anonchat",
            "postgresql://u:secret@db:5432/anonchat",
            "postgresql+asyncpg://u:secret@db:5432/anonchat",
            "postgresql+psycopg2://u:secret@db:5432/anonchat",
        ] {
            let url = DatabaseUrl::parse(raw, UrlSource::Flag).unwrap();
            assert_eq!(url.database(), "anonchat");
            assert_eq!(url.redacted(), "postgresql://u:***@db:5432/anonchat");
            assert!(url.libpq_url(5).starts_with("postgresql://u:secret@db:5432/anonchat?application_name=anonmigrate"));
        }
    }

    #[test]
    fn rejects_other_schemes_without_leaking_the_password() {
        let err = DatabaseUrl::parse("mysql://u:hunter2@db/x", UrlSource::Environment)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("DATABASE_URL in the environment"), "{err}");
    }

    #[test]
    fn redacts_in_free_text() {
        let cases = [
            ("connect to postgres://a:b@h/d failed", "connect to postgres://a:***@h/d failed"),
            ("host=x password=pw dbname=d", "host=x password=*** dbname=d"),
            ("postgres://nopass@h/d", "postgres://nopass@h/d"),
            ("postgresql://u:p%40ss@h/d?sslmode=require", "postgresql://u:***@h/d?sslmode=require"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_text(input), expected);
        }
    }

    #[test]
    fn odd_database_names_round_trip() {
        let url = DatabaseUrl::parse("postgres://u@h/x", UrlSource::Flag).unwrap();
        let odd = url.with_database("my\"db; drop");
        assert_eq!(odd.database(), "my\"db; drop");
    }
}
