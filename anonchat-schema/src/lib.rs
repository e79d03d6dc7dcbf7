//! The Anonymous Chat database schema for diesel: table definitions and the model structs that go with them.
//!
//! [`schema`] (`src/schema.rs`) is generated, not written by hand: `cargo anonmigrate schema` writes it from
//! `../migrations` with the `[print_schema]` settings of the workspace's `diesel.toml`, and it is byte for byte
//! what `diesel print-schema` (diesel_cli 2.3) prints for a database migrated with that chain:
//!
//! ```toml
//! [print_schema]
//! file = "anonchat-schema/src/schema.rs"
//! custom_type_derives = ["diesel::query_builder::QueryId", "Clone"]
//! import_types = ["diesel::sql_types::*", "pgvector::sql_types::*"]
//! except_custom_type_definitions = ["Vector"]
//! ```
//!
//! The last two settings make the pgvector `vector` column use `pgvector::sql_types::Vector`
//! instead of a locally generated `Vector` type that nothing could convert from. Regenerate the
//! file with `cargo anonmigrate schema` rather than editing it (a CLI test checks that it is current).
//!
//! [`models`] holds the hand-written row and insert structs, including the Rust side of the
//! `request_method` enum.

pub mod models;
// Generated code: diesel does not derive Debug on its SQL type markers.
#[allow(missing_debug_implementations)]
pub mod schema;

pub use models::{
    Message, NewMessage, NewRequestLogEntry, NewUser, RequestLogEntry, RequestMethod,
    UnknownRequestMethod, User,
};
pub use schema::{messages, request_log, users};
