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

impl UrlSource {
    /// How to stop using a URL from this source, so commands fall back to the managed local server.
    pub fn how_to_drop(&self) -> String {
        match self {
            UrlSource::Flag => "leave out --database-url".to_owned(),
            UrlSource::Environment => "unset DATABASE_URL".to_owned(),
            UrlSource::DotEnv(path) => format!("remove DATABASE_URL from {}", path.display()),
            UrlSource::LocalServer => "`cargo anonmigrate server start`".to_owned(),
            UrlSource::DirectFlag => "leave out --direct-url".to_owned(),
            UrlSource::DirectEnvironment => "unset DIRECT_URL".to_owned(),
            UrlSource::DirectDotEnv(path) => format!("remove DIRECT_URL from {}", path.display()),
            UrlSource::DirectMetadata(path) => {
                format!("remove direct-url from [workspace.metadata.anonmigrate] of {}", path.display())
            }
        }
    }
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
    /// A tenant schema (schema-per-tenant fleets): every session sets `search_path` to it, then the shared
    /// schemas, so unqualified names, the bookkeeping tables and the migration lock are the tenant's.
    tenant: Option<TenantSchema>,
}

/// The schema a session works in, and the shared schemas after it in `search_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSchema {
    pub schema: String,
    pub shared: Vec<String>,
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
            url: redact_url(raw),
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
        const ENCODE: &str = "percent-encode special characters in the user name and password (`%` is `%25`, `@` is `%40`, `/` is `%2F`, `?` is `%3F`, `#` is `%23`, a space is `%20`)";
        if bad_percent_escape(raw) {
            return Err(bad(format!("a `%` is not followed by two hex digits; {ENCODE}")));
        }
        let after_scheme = &raw[scheme_end + 3..];
        let authority = &after_scheme[..after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len())];
        // `user:12/34@host/db` parses as host `user`, port 12 and database `34@host/db` (and `user:/x?y#@host`
        // as a path, query and fragment): a password with an unencoded `/`, `?` or `#` would then be printed
        // as the database name. That holds when the password's own `@` comes first too (`user:@&/x@host`), so
        // any `@` after the authority of a URL with a `:` in it is refused: one in a query must be encoded too.
        if authority.contains(':') && after_scheme[authority.len()..].contains('@') {
            return Err(bad(format!("the part before the `@` holds a `/`, `?` or `#`; {ENCODE}")));
        }
        let normalised = format!("postgresql{}", &raw[scheme_end..]);
        let url = Url::parse(&normalised).map_err(|e| bad(format!("{e}; {ENCODE}")))?;
        if url.path().trim_start_matches('/').is_empty() {
            return Err(bad("no database name in the path; add `/<database>` to the URL".into()));
        }
        Ok(DatabaseUrl { url, source, tenant: None })
    }

    /// The same database, with sessions working in `schema` (then `shared`) through `search_path`.
    pub fn with_tenant_schema(&self, schema: &str, shared: &[String]) -> DatabaseUrl {
        DatabaseUrl {
            tenant: Some(TenantSchema { schema: schema.to_owned(), shared: shared.to_vec() }),
            ..self.clone()
        }
    }

    pub fn tenant(&self) -> Option<&TenantSchema> {
        self.tenant.as_ref()
    }

    /// The URL without the tenant schema (the database as a whole).
    pub fn without_tenant(&self) -> DatabaseUrl {
        DatabaseUrl { tenant: None, ..self.clone() }
    }

    /// The server part (`host:port`, or the socket directory), to tell targets on different servers apart.
    pub fn server(&self) -> String {
        let host = self.host();
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
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
            tenant: self.tenant.clone(),
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
        if let Some(tenant) = &self.tenant {
            // Through the startup packet rather than a `SET` afterwards, so every session opened for this target
            // (the runner's, the pooler probe's, a dry run's) works in the tenant schema from its first statement.
            let path: Vec<String> =
                std::iter::once(&tenant.schema).chain(&tenant.shared).map(|s| crate::db::quote_ident(s)).collect();
            let option = format!("-c search_path={}", escape_libpq_option(&path.join(",")));
            let mut pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
            match pairs.iter_mut().find(|(k, _)| k == "options") {
                Some((_, value)) => *value = format!("{value} {option}"),
                None => pairs.push(("options".into(), option)),
            }
            // Encoded by hand: the form encoding of `query_pairs_mut` writes a space as `+`, which libpq keeps.
            let query: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{}={}", encode_query_value(k), encode_query_value(v))).collect();
            url.set_query(Some(&query.join("&")));
        }
        url.to_string()
    }

    /// The Unix socket file libpq connects to when the URL (or PGHOST/PGPORT, as libpq reads them) names exactly
    /// one socket directory: `<dir>/.s.PGSQL.<port>`. `None` for TCP, several hosts, or libpq's built-in default.
    pub fn unix_socket(&self) -> Option<std::path::PathBuf> {
        let param = |key: &str| self.url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
        if param("hostaddr").is_some() {
            return None;
        }
        let host = param("host")
            .or_else(|| self.url.host_str().filter(|h| !h.is_empty()).map(decode))
            .or_else(|| std::env::var("PGHOST").ok())?;
        let port = param("port")
            .or_else(|| self.url.port().map(|p| p.to_string()))
            .or_else(|| std::env::var("PGPORT").ok())
            .unwrap_or_else(|| "5432".into());
        if !host.starts_with('/') || host.contains(',') || port.contains(',') {
            return None;
        }
        Some(std::path::Path::new(&host).join(format!(".s.PGSQL.{}", port.trim())))
    }

    /// [`libpq_url`](Self::libpq_url) without its password, and the password (decoded) apart: for a child
    /// process (`pg_dump`), which gets the password through `PGPASSWORD` so it never shows in a process listing.
    pub fn libpq_url_and_password(&self, connect_timeout_secs: u64) -> (String, Option<String>) {
        let in_query = self.url.query_pairs().find(|(k, _)| k == "password").map(|(_, v)| v.into_owned());
        let password = self.url.password().map(decode).or(in_query);
        let mut without = self.clone();
        // Cannot fail for a URL with a host, which every parsed PostgreSQL URL with a password has.
        let _ = without.url.set_password(None);
        // A `?password=` parameter would reach the command line too: moved out with the other spelling.
        let rest: Vec<(String, String)> =
            without.url.query_pairs().filter(|(k, _)| k != "password").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        if rest.is_empty() {
            without.url.set_query(None);
        } else {
            without.url.query_pairs_mut().clear().extend_pairs(rest);
        }
        (without.libpq_url(connect_timeout_secs), password)
    }

    /// The URL with any password replaced by `***`, safe to print.
    pub fn redacted(&self) -> String {
        redact_text(self.url.as_str())
    }

    /// The host (or socket directory, from a `host` parameter) libpq connects to.
    fn host(&self) -> String {
        self.url
            .query_pairs()
            .find(|(k, _)| k == "host")
            .map(|(_, v)| v.into_owned())
            .or_else(|| self.url.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".into())
    }

    /// Human-readable `database on host` for one-line notices.
    pub fn describe(&self) -> String {
        let host = self.host();
        match &self.tenant {
            Some(tenant) => format!("schema `{}` of database `{}` on {}", tenant.schema, self.database(), host),
            None => format!("database `{}` on {}", self.database(), host),
        }
    }
}

/// libpq splits `options` at unescaped spaces and takes `\` as an escape.
fn escape_libpq_option(value: &str) -> String {
    value.replace('\\', "\\\\").replace(' ', "\\ ")
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

/// Replaces passwords in any text that may contain URLs or `password=` conninfo pairs. Errs on the side of hiding
/// too much: a password may hold `/`, `?`, `#`, `@` or `:` unencoded (people paste them so), so the user part of a
/// URL runs to the last `@` of the whitespace-free word, not to the first `/`.
pub fn redact_text(text: &str) -> String {
    redact_password_pairs(&redact_urls(text, |c| c.is_whitespace()))
}

/// Redacts one URL given on its own (a flag, an environment variable, a `.env` value): whitespace cannot end it,
/// since a pasted password may contain spaces.
pub fn redact_url(raw: &str) -> String {
    redact_password_pairs(&redact_urls(raw, |_| false))
}

fn redact_urls(text: &str, ends_word: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let word_end = after.find(&ends_word).unwrap_or(after.len());
        let word = &after[..word_end];
        // The last `@` of the word: a pasted password may hold `@`, `/`, `?` or `#`, so neither the first `@` nor
        // the end of the authority is safe. A query value with `@` makes this hide more than the password.
        let consumed = match word.rfind('@') {
            Some(at) => {
                let userinfo = &word[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                at
            }
            None => 0,
        };
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// `password=…` in conninfo strings and URL queries, in every spelling libpq accepts: any case, spaces around
/// `=`, a single-quoted value with spaces and `\'` escapes (also `sslpassword`).
fn redact_password_pairs(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find("password") {
        let key_end = search + found + "password".len();
        search = key_end;
        let bytes = text.as_bytes();
        let mut i = key_end;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        let value_start = i;
        let value_end = match bytes.get(i) {
            Some(&quote @ (b'\'' | b'"')) => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != quote {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                (j + 1).min(bytes.len())
            }
            _ => {
                // In a URL query `&` ends the value; in a conninfo string only whitespace does.
                let mut key_start = key_end - "password".len();
                if lower[..key_start].ends_with("ssl") {
                    key_start -= 3;
                }
                let in_query = key_start > 0 && matches!(bytes[key_start - 1], b'?' | b'&');
                text[i..]
                    .find(|c: char| (in_query && c == '&') || c.is_whitespace())
                    .map_or(text.len(), |e| i + e)
            }
        };
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        copied = value_end;
        search = value_end.max(search);
    }
    out.push_str(&text[copied..]);
    out
}

/// The first `%` not followed by two hex digits, if any: libpq refuses such a URL and quotes the token around
/// it (the password) in its message, so it is caught here first.
fn bad_percent_escape(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%' && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_child_process_gets_the_password_apart_in_either_spelling() {
        for raw in ["postgres://app:s3cret@db:5432/anonchat?sslmode=disable", "postgres://app@db:5432/anonchat?password=s3cret&sslmode=disable"] {
            let url = DatabaseUrl::parse(raw, UrlSource::Flag).unwrap();
            let (libpq, password) = url.libpq_url_and_password(5);
            assert_eq!(password.as_deref(), Some("s3cret"), "{raw}");
            assert!(!libpq.contains("s3cret") && libpq.contains("sslmode=disable"), "{libpq}");
        }
    }

    use super::*;

    #[test]
    fn the_password_for_a_child_process_travels_apart_from_the_url() {
        let url = DatabaseUrl::parse("postgresql+asyncpg://u:p%40ss@db:5432/anonchat", UrlSource::Flag).unwrap();
        let (conninfo, password) = url.libpq_url_and_password(5);
        assert_eq!(conninfo, "postgresql://u@db:5432/anonchat?application_name=anonmigrate&connect_timeout=5");
        assert_eq!(password.as_deref(), Some("p@ss"));
        let socket = DatabaseUrl::parse("postgresql://u@localhost/x?host=%2Ftmp%2Fsock", UrlSource::Flag).unwrap();
        assert_eq!(socket.libpq_url_and_password(5).1, None);
    }

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
    fn a_tenant_schema_travels_in_the_startup_options() {
        let url = DatabaseUrl::parse("postgres://u:pw@h:5433/app?options=-c%20work_mem%3D64MB", UrlSource::Flag).unwrap();
        let tenant = url.with_tenant_schema("acme corp", &["public".to_owned()]);
        let libpq = tenant.libpq_url(5);
        assert!(libpq.contains("options=-c%20work_mem%3D64MB%20-c%20search_path%3D%22acme%5C%20corp%22%2C%22public%22"), "{libpq}");
        assert_eq!(tenant.describe(), "schema `acme corp` of database `app` on h");
        assert_eq!(tenant.server(), "h:5433");
        assert!(!tenant.without_tenant().libpq_url(5).contains("search_path"));
    }

    #[test]
    fn odd_database_names_round_trip() {
        let url = DatabaseUrl::parse("postgres://u@h/x", UrlSource::Flag).unwrap();
        let odd = url.with_database("my\"db; drop");
        assert_eq!(odd.database(), "my\"db; drop");
    }
}
