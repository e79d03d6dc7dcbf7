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
        "`{}` is not named `<version>_<name>` (version: digits, `-` allowed; name: anything after the first `_`); rename it, e.g. `2024-01-31-120000_add_users`, or move it out of the migrations directory",
        .0.display()
    )]
    BadName(PathBuf),

    #[error(
        "migration directory `{escaped}` in `{}` has a control character (a line break, tab, escape...) in its name; rename it to printable characters only",
        dir.display()
    )]
    ControlCharacter { dir: PathBuf, escaped: String },

    #[error(
        "two migrations share version {version}: `{}` and `{}`; run `cargo anonmigrate merge` (after a git merge it moves the one the other branch added after the head, and a database that applied it under this version renumbers its record on the next `run`), or rename one directory by hand",
        first.display(), second.display()
    )]
    DuplicateVersion {
        version: String,
        first: PathBuf,
        second: PathBuf,
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
