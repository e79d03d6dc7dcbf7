//! `run --sql` and `revert --sql`: the script the runner would send, written out for review or for psql, without
//! connecting anywhere. Pure: chain in, text out.
//!
//! The pieces are the runner's own (`runner::lock_timeout_sql`, `runner::finish_sql`, the `bookkeeping` SQL), in
//! the runner's order, so applying the script leaves the same schema and the same bookkeeping rows as `run`.
//! Since the database is not read, the script states what it assumes (nothing applied for `run`, the whole
//! chain applied for `revert`, or `--from VERSION` as the current version) and checks it when it runs.

use std::fmt::Write as _;
use std::time::Duration;

use anonmigrate_chain::Chain;

use crate::bookkeeping;
use crate::db::quote_literal;
use crate::error::{Error, Result};
use crate::plan::{Direction, Script};
use crate::runner::{self, MIGRATION_LOCK_KEY, RevertScope};

/// How long the script polls for the migration lock before it stops.
const OFFLINE_LOCK_WAIT_SECS: u32 = 10;

/// Which part of the chain a script covers.
#[derive(Debug, Clone, Default)]
pub struct OfflineOptions {
    /// The version the database is assumed to be at (applied up to and including it). `None`: nothing applied
    /// (`run`), or the whole chain applied (`revert`).
    pub from: Option<String>,
    /// `run` only: apply up to and including this version.
    pub to: Option<String>,
    /// `run` only: apply at most this many migrations.
    pub step: Option<usize>,
    /// `lock_timeout` for migration statements, as the runner sets it (`None` disables).
    pub ddl_lock_timeout: Option<Duration>,
}

/// The script `run` would send to a database at `options.from` (default: an empty database).
pub fn run_script(chain: &Chain, options: &OfflineOptions) -> Result<String> {
    let first = match &options.from {
        Some(from) => runner::known_version(chain, "--from", from)? + 1,
        None => 0,
    };
    let mut end = match &options.to {
        Some(to) => runner::known_version(chain, "--to", to)? + 1,
        None => chain.migrations.len(),
    };
    if end < first {
        return Err(Error::Refused(format!(
            "--to {} is older than --from {}: nothing after --from is at or before --to",
            options.to.as_deref().unwrap_or_default(),
            options.from.as_deref().unwrap_or_default()
        )));
    }
    if let Some(step) = options.step {
        end = end.min(first + step);
    }
    // Every up.sql is split and checked, as `run` checks them all before connecting.
    let all: Vec<Script> = chain.migrations.iter().map(|m| Script::prepare(m, Direction::Up)).collect::<Result<_>>()?;
    let scripts = &all[first..end];

    let assumption = match &options.from {
        Some(from) => format!("the database is at version {from}"),
        None => "no migration of this chain is applied yet".to_owned(),
    };
    let mut out = header("run", chain, scripts, &assumption);
    out.push_str(&lock_sql());
    out.push_str("\n-- The bookkeeping tables (diesel's __diesel_schema_migrations and anonmigrate's own), created if missing.\n");
    out.push_str(bookkeeping::CREATE_TABLES);
    if !scripts.is_empty() {
        let versions = version_list(scripts);
        out.push_str("\n-- Stops if a migration of this script is already applied, or partly applied (the script assumes not).\n");
        out.push_str(&guard(
            &format!(
                "EXISTS (SELECT 1 FROM __diesel_schema_migrations WHERE version IN ({versions})) \
                 OR EXISTS (SELECT 1 FROM __anonmigrate_migrations WHERE version IN ({versions}) AND statements_done > 0)"
            ),
            "anonmigrate: a migration of this script is already applied or partly applied; see `cargo anonmigrate status` and generate the script again with --from VERSION",
        ));
    }
    for (index, script) in scripts.iter().enumerate() {
        migration_sql(&mut out, script, Direction::Up, index + 1, scripts.len(), options.ddl_lock_timeout);
    }
    out.push_str(&footer(scripts));
    Ok(out)
}

/// The script `revert` would send to a database at `options.from` (default: the newest migration on disk).
pub fn revert_script(chain: &Chain, scope: RevertScope, options: &OfflineOptions) -> Result<String> {
    let head = match &options.from {
        Some(from) => runner::known_version(chain, "--from", from)? + 1,
        None => chain.migrations.len(),
    };
    let applied = &chain.migrations[..head];
    let keep = match scope {
        RevertScope::Steps(n) => head.saturating_sub(n),
        RevertScope::All => 0,
        RevertScope::To(index) if index < head => index + 1,
        RevertScope::To(index) => {
            return Err(Error::Refused(format!(
                "--to {}: that version is newer than the assumed current version {}, so there is nothing to revert to",
                chain.migrations[index].version,
                applied.last().map_or("(none)", |m| m.version.as_str())
            )));
        }
    };
    let scripts: Vec<Script> = applied[keep..]
        .iter()
        .rev()
        .map(|m| Script::prepare(m, Direction::Down))
        .collect::<Result<_>>()?;

    let assumption = match applied.last() {
        Some(current) => format!("the database is at version {} (every migration up to it applied)", current.version),
        None => "no migration is applied".to_owned(),
    };
    let mut out = header("revert", chain, &scripts, &assumption);
    out.push_str(&lock_sql());
    // A database only diesel_cli migrated has no table of ours, and each revert's bookkeeping deletes from it.
    out.push_str("\n-- The bookkeeping tables (diesel's __diesel_schema_migrations and anonmigrate's own), created if missing.\n");
    out.push_str(bookkeeping::CREATE_TABLES);
    if let Some(current) = applied.last() {
        let versions = version_list(&scripts);
        let count = scripts.len();
        out.push_str("\n-- Stops unless the database is where the script assumes: these migrations applied, none newer.\n");
        out.push_str(&guard(
            &format!(
                "(SELECT count(*) FROM __diesel_schema_migrations WHERE version IN ({versions})) <> {count} \
                 OR EXISTS (SELECT 1 FROM __diesel_schema_migrations WHERE version > {})",
                quote_literal(&current.version)
            ),
            "anonmigrate: the database is not at the version this script assumes; see `cargo anonmigrate status` and generate the script again with --from VERSION",
        ));
    }
    for (index, script) in scripts.iter().enumerate() {
        migration_sql(&mut out, script, Direction::Down, index + 1, scripts.len(), options.ddl_lock_timeout);
    }
    out.push_str(&footer(&scripts));
    Ok(out)
}

fn header(command: &str, chain: &Chain, scripts: &[Script], assumption: &str) -> String {
    let mut out = format!(
        "-- anonmigrate {command} --sql: the statements `cargo anonmigrate {command}` would send, written without connecting.\n\
         -- Assumes {assumption}; the checks below stop the script when the database disagrees.\n\
         -- Apply with: psql -v ON_ERROR_STOP=1 -f FILE \"$DATABASE_URL\"\n\
         -- Migrations directory: {}\n",
        comment(&chain.dir.display().to_string())
    );
    match (scripts.first(), scripts.last()) {
        (Some(first), Some(last)) if scripts.len() > 1 => {
            let _ = writeln!(out, "-- {} migrations: {} .. {}", scripts.len(), comment(&first.dir_name), comment(&last.dir_name));
        }
        (Some(only), _) => {
            let _ = writeln!(out, "-- 1 migration: {}", comment(&only.dir_name));
        }
        _ => out.push_str("-- Nothing to do: no migration in the requested range.\n"),
    }
    out
}

fn footer(scripts: &[Script]) -> String {
    format!("\n-- End of script ({} migration{}).\n", scripts.len(), if scripts.len() == 1 { "" } else { "s" })
}

/// The runner's migration lock, polled like the runner polls it. The wait is short: a session waiting inside one
/// statement would hold up a concurrent runner's `CREATE INDEX CONCURRENTLY`, which waits for it in turn, so the
/// script stops rather than wait long. psql's session keeps the lock until it disconnects.
fn lock_sql() -> String {
    format!(
        "\n-- The migration lock every `cargo anonmigrate` runner takes, held until psql disconnects.\n\
         DO $anonmigrate$\n\
         DECLARE\n    deadline timestamptz := clock_timestamp() + interval '{OFFLINE_LOCK_WAIT_SECS} seconds';\n\
         BEGIN\n\
         \x20   WHILE NOT pg_try_advisory_lock({MIGRATION_LOCK_KEY}) LOOP\n\
         \x20       IF clock_timestamp() > deadline THEN\n\
         \x20           RAISE EXCEPTION {};\n\
         \x20       END IF;\n\
         \x20       PERFORM pg_sleep(0.1);\n\
         \x20   END LOOP;\n\
         END\n$anonmigrate$;\n",
        quote_literal(&format!(
            "anonmigrate: another runner has held the migration lock on this database for {OFFLINE_LOCK_WAIT_SECS}s; run the script when it has finished"
        ))
    )
}

fn guard(condition: &str, message: &str) -> String {
    format!(
        "DO $anonmigrate$\nBEGIN\n    IF {condition} THEN\n        RAISE EXCEPTION {};\n    END IF;\nEND\n$anonmigrate$;\n",
        quote_literal(message)
    )
}

fn version_list(scripts: &[Script]) -> String {
    scripts.iter().map(|s| quote_literal(&s.version)).collect::<Vec<_>>().join(", ")
}

/// A statement as psql needs it: terminated by `;`, on a line of its own when the statement's last line holds a
/// `--` comment that would swallow it.
fn terminated(sql: &str) -> String {
    let last_line = sql.rsplit('\n').next().unwrap_or(sql);
    if last_line.contains("--") { format!("{sql}\n;\n") } else { format!("{sql};\n") }
}

/// Text for a `--` comment: a line break would end the comment and turn the rest into SQL that psql runs, so
/// every control character is written escaped (`\n`). Names with one are refused when the chain loads; paths are not.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// One direction of one migration, in the order the live runner sends it.
fn migration_sql(out: &mut String, script: &Script, direction: Direction, index: usize, total: usize, ddl: Option<Duration>) {
    let file = if direction == Direction::Up { "up.sql" } else { "down.sql" };
    let count = script.statements.len();
    let plural = if count == 1 { "" } else { "s" };
    out.push_str("\n-- ==========================================================================================\n");
    if script.transactional {
        let _ = writeln!(out, "-- {index}/{total} {} {file}: one transaction, {count} statement{plural}", comment(&script.dir_name));
        out.push_str("BEGIN;\n");
        out.push_str(&terminated(&runner::lock_timeout_sql(ddl, true)));
        statements(out, script, false);
        out.push_str("-- bookkeeping, committed with the migration\n");
        out.push_str(&runner::finish_sql(script, direction, bookkeeping::Elapsed::SinceTransactionStart));
        out.push_str("\nCOMMIT;\n");
        return;
    }
    let _ = writeln!(
        out,
        "-- {index}/{total} {} {file}: run_in_transaction = false, {count} statement{plural} each on its own{}{}",
        comment(&script.dir_name),
        if script.blocks.is_empty() { "" } else { " (the file's BEGIN … COMMIT blocks each as one unit)" },
        if direction == Direction::Up { ", progress recorded after each" } else { "" }
    );
    if direction == Direction::Up {
        out.push_str(&bookkeeping::record_started_sql(&script.version, &script.name, &script.checksum, count));
        out.push('\n');
    }
    out.push_str(&terminated(&runner::lock_timeout_sql(ddl, false)));
    statements(out, script, direction == Direction::Up);
    out.push_str("RESET lock_timeout;\n");
    let _ = writeln!(out, "BEGIN;\n{}\nCOMMIT;", runner::finish_sql(script, direction, bookkeeping::Elapsed::Unknown));
}

/// The migration's statements; `progress`: each followed by the bookkeeping that records it as done.
/// Inside an author `BEGIN … COMMIT` block the progress rows belong to the block's transaction, the closing
/// COMMIT's own included (written before it), as the runner sends them.
fn statements(out: &mut String, script: &Script, progress: bool) {
    let count = script.statements.len();
    if let Some((begin, commit)) = script.wrapper {
        let _ = writeln!(
            out,
            "-- the file's own BEGIN (line {begin}) and COMMIT (line {commit}) are left out: it runs in this transaction"
        );
    }
    let hashes = if progress { script.prefix_hashes() } else { Vec::new() };
    for (i, statement) in script.statements.iter().enumerate() {
        let record = || format!("{}\n", bookkeeping::record_progress_sql(&script.version, i + 1, &hashes[i + 1]));
        let closes_block = script.closes_block(i);
        if progress && closes_block {
            out.push_str(&record());
        }
        let _ = writeln!(out, "-- statement {} of {count} (line {})", i + 1, statement.line);
        out.push_str(&terminated(&statement.sql));
        if progress && !closes_block {
            out.push_str(&record());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_line_comment_does_not_swallow_the_semicolon() {
        assert_eq!(terminated("SELECT 1"), "SELECT 1;\n");
        assert_eq!(terminated("SELECT 1 -- one"), "SELECT 1 -- one\n;\n");
        assert_eq!(terminated("-- why\nSELECT 1"), "-- why\nSELECT 1;\n");
        assert_eq!(terminated("SELECT 1 /* one */"), "SELECT 1 /* one */;\n");
    }

    #[test]
    fn comments_cannot_be_ended_by_a_name() {
        assert_eq!(comment("1_x\nDROP TABLE victim; --\r\t"), "1_x\\nDROP TABLE victim; --\\r\\t");
        assert_eq!(comment("naïve name"), "naïve name");
    }
}
