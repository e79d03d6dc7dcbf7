//! The migration chain as it lies on disk: discovery, diesel-compatible ordering, content hashes and the
//! `anonmigrate.lock` file. Deliberately tiny (std + sha2) so a `build.rs` can use it without a database.

mod chain;
pub mod drift;
mod error;
mod hash;
mod lockfile;
mod write;
pub mod transactions;

pub use chain::{Chain, Migration, parse_dir_name, version_of_arg, with_subversion};
pub use error::ChainError;
pub use hash::{normalise_line_endings, prefix_hashes, sha256_hex};
pub use write::write_atomically;
pub use lockfile::{ConflictedLock, LOCK_FILE_NAME, LockEntry, LockFile, LockMismatch, Rename, SchemaBlock, SchemaRecord, chain_prefix_hashes, has_conflict_markers, split_blocks};
