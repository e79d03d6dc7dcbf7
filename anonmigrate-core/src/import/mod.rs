//! Adopting an existing database history: `import alembic` (an Alembic revision graph → one diesel-format
//! migration per revision, from Alembic's own offline SQL), `stamp --from-alembic` (the database's
//! `alembic_version` → the imported migrations recorded as applied) and `baseline` (a live database's schema as
//! one migration, from the server's `pg_dump`). Returns what it did; the CLI renders it.

pub mod alembic;
pub mod baseline;
mod command;

pub use alembic::{AlembicOptions, AlembicStamp, ImportReport, ImportWarning, ImportedMigration, import_alembic, stamp_from_alembic};
pub use baseline::{Baseline, baseline};
