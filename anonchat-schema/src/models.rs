//! Diesel model structs for the Anonymous Chat tables: one row type and one insert type per table.
//!
//! The `id` columns are `GENERATED ALWAYS AS IDENTITY` and `created_at` defaults to `now()`,
//! so the `New*` insert types carry neither; the database fills both in.

use std::fmt;
use std::io::Write;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};

use crate::schema::{messages, request_log, sql_types, users};

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    /// At most 64 characters; unique across all users.
    pub username: String,
    pub created_at: DateTime<Utc>,
}

/// A user to insert into `users`.
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct NewUser {
    pub username: String,
}

/// The PostgreSQL enum `request_method`: the HTTP method of a logged request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, FromSqlRow, AsExpression)]
#[diesel(sql_type = sql_types::RequestMethod)]
pub enum RequestMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl RequestMethod {
    /// Every variant, in the order the SQL enum declares its labels.
    pub const ALL: [RequestMethod; 7] = [
        RequestMethod::Get,
        RequestMethod::Post,
        RequestMethod::Put,
        RequestMethod::Patch,
        RequestMethod::Delete,
        RequestMethod::Head,
        RequestMethod::Options,
    ];

    /// The label PostgreSQL stores for this variant (also the HTTP method token).
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestMethod::Get => "GET",
            RequestMethod::Post => "POST",
            RequestMethod::Put => "PUT",
            RequestMethod::Patch => "PATCH",
            RequestMethod::Delete => "DELETE",
            RequestMethod::Head => "HEAD",
            RequestMethod::Options => "OPTIONS",
        }
    }

    /// Looks a variant up by its exact SQL label, e.g. `b"GET"`.
    fn from_label(label: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|method| method.as_str().as_bytes() == label)
    }
}

impl fmt::Display for RequestMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that is not one of the `request_method` labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRequestMethod(pub String);

impl fmt::Display for UnknownRequestMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown request method {:?}", self.0)
    }
}

impl std::error::Error for UnknownRequestMethod {}

impl FromStr for RequestMethod {
    type Err = UnknownRequestMethod;

    /// Parses an SQL label; the match is exact, so `"get"` is rejected.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_label(s.as_bytes()).ok_or_else(|| UnknownRequestMethod(s.to_owned()))
    }
}

impl ToSql<sql_types::RequestMethod, Pg> for RequestMethod {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // PostgreSQL enums travel as their label text in both the text and binary formats.
        out.write_all(self.as_str().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<sql_types::RequestMethod, Pg> for RequestMethod {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let label = value.as_bytes();
        Self::from_label(label).ok_or_else(|| {
            format!(
                "unrecognized request_method label {:?}",
                String::from_utf8_lossy(label)
            )
            .into()
        })
    }
}

/// A row of `request_log`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(table_name = request_log)]
#[diesel(belongs_to(User))]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct RequestLogEntry {
    pub id: i64,
    pub method: RequestMethod,
    pub path: String,
    /// Between 100 and 599 (a CHECK constraint).
    pub status_code: i16,
    /// Never negative (a CHECK constraint).
    pub duration_ms: f64,
    /// `None` for anonymous requests and for requests whose user was deleted.
    pub user_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A request to insert into `request_log`.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = request_log)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct NewRequestLogEntry {
    pub method: RequestMethod,
    pub path: String,
    pub status_code: i16,
    pub duration_ms: f64,
    /// `None` inserts NULL: an anonymous request.
    #[diesel(treat_none_as_default_value = false)]
    pub user_id: Option<i64>,
}

/// A row of `messages`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable, Associations)]
#[diesel(table_name = messages)]
#[diesel(belongs_to(User, foreign_key = author_id))]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct Message {
    pub id: i64,
    pub room: String,
    pub author_id: i64,
    pub body: String,
    /// The 384-dimension sentence embedding; `None` until the embedding worker has run.
    pub embedding: Option<pgvector::Vector>,
    pub created_at: DateTime<Utc>,
}

/// A message to insert into `messages`.
#[derive(Debug, Clone, PartialEq, Insertable)]
#[diesel(table_name = messages)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct NewMessage {
    pub room: String,
    pub author_id: i64,
    pub body: String,
    /// Usually `None` (stored as NULL) and filled in later by the embedding worker.
    #[diesel(treat_none_as_default_value = false)]
    pub embedding: Option<pgvector::Vector>,
}
