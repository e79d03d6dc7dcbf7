//! Errors found in a migration directory or lock file, each naming the path and the fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(
        "migrations directory `{}` does not exist; create it with `cargo anonmigrate generate NAME` or point --migrations-dir at the right place",
        .0.display()
    )]
    MissingDirectory(PathBuf),

    #[error("cannot read `{}`: {source}; check its permissions", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "`{}` has no version: as in diesel, the version is the text before the first `_` with `-` removed, and it is empty here; rename it, e.g. `2024-01-31-120000-0000_add_users`, or move it out of the migrations directory",
        .0.display()
    )]
    BadName(PathBuf),

    #[error(
        "migration directory `{escaped}` in `{}` has a control character (a line break, tab, escape...) in its name; rename it to printable characters only",
        dir.display()
    )]
    ControlCharacter { dir: PathBuf, escaped: String },

    #[error(
        "two migrations share version {version}: `{}` and `{}` (diesel would apply only one of them); run `cargo anonmigrate merge` (after a git merge it moves the one the other branch added after the head, and a database that applied it under this version renumbers its record on the next `run`), or give one a new version by hand, e.g. rename `{}` to `{suggestion}` if it is not applied anywhere yet",
        first.display(), second.display(), second.file_name().map_or(std::borrow::Cow::Borrowed("?"), |n| n.to_string_lossy())
    )]
    DuplicateVersion {
        version: String,
        first: PathBuf,
        second: PathBuf,
        /// A directory name for `second` whose version sorts right after the shared one.
        suggestion: String,
    },

    #[error("migration `{}` has no up.sql; add the file (it may hold just a comment if the step is empty on purpose)", .0.display())]
    MissingUpSql(PathBuf),

    #[error("`{}` is empty; write the migration's SQL into it, or delete the migration directory", .0.display())]
    EmptyUpSql(PathBuf),

    #[error(
        "`{}` is not valid UTF-8 (first bad byte at offset {offset}); re-save the file as UTF-8",
        path.display()
    )]
    NotUtf8 { path: PathBuf, offset: usize },

    #[error(
        "`{}` holds git conflict markers (both branches added migrations); `cargo anonmigrate merge` resolves it (the union of both sides, in chain order), then commit it",
        .0.display()
    )]
    ConflictedLockFile(PathBuf),

    #[error("`{}` line {line}: {reason}; regenerate it with `cargo anonmigrate lock`", path.display())]
    BadLockFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}
