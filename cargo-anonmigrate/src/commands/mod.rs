//! One module per command group: each turns parsed arguments into one engine call and renders the result.

mod cache;
mod check;
mod completions;
mod database;
mod doctor;
mod fleet;
mod generate;
mod history;
mod import;
mod lint;
mod maintenance;
mod run;
mod schema;
mod server;
mod status;

use std::process::ExitCode;
use std::time::Duration;

use anonmigrate_core::chain::Chain;
use anonmigrate_core::config::{Overrides, Workspace};
use anonmigrate_core::database_url::DatabaseUrl;
use anyhow::Context as _;

use anonmigrate_core::lock_sync::{self, LockPolicy};

use crate::cli::{Cli, Command, DatabaseCommand, FleetCommand, Format, FormatArg, GlobalArgs, ImportCommand};
use crate::output::{Printer, note};

/// What every command needs: the workspace, how to print, and (lazily) the database.
pub struct Context {
    pub workspace: Workspace,
    pub format: Format,
    pub printer: Printer,
    /// `--locked`: the lock file must already match; nothing may update it.
    pub locked: bool,
    /// `--locked-schema`: schema.rs must already match the migrations; nothing may rewrite it.
    pub locked_schema: bool,
    /// The chain [`Context::sync_lock`] loaded, for a command that reads it next ([`Context::synced_chain`]) instead
    /// of reading and hashing every file again.
    synced: std::sync::Mutex<Option<Chain>>,
}

impl Context {
    /// `needs_migrations`: the command works on the migrations directory (all but `server`).
    fn new(global: &GlobalArgs, needs_migrations: bool, generate: bool) -> anyhow::Result<Context> {
        let format = match (global.format, generate) {
            (FormatArg::Json, _) => Format::Json,
            (FormatArg::Text, _) | (FormatArg::Sql, true) => Format::Text,
            (FormatArg::Sql, false) => {
                return Err(crate::exit::UsageError(
                    "--format sql is `generate`'s migration format (diesel's flag); the output formats are text and json".into(),
                )
                .into());
            }
        };
        let workspace = Workspace::discover(Overrides {
            manifest_path: global.manifest_path.clone(),
            migrations_dir: global.migrations_dir.clone(),
            database_url: global.database_url.clone(),
            direct_url: global.direct_url.clone(),
            // Relative to where the command runs, as diesel reads it.
            config_file: global.config_file.as_ref().map(|p| std::path::absolute(p)).transpose()?,
        })?;
        if global.manifest_path.is_none() && !workspace.root.ancestors().any(|d| d.join("Cargo.toml").is_file()) {
            outside_cargo_project(&workspace, global.migrations_dir.is_some(), needs_migrations)?;
        }
        Ok(Context {
            workspace,
            format,
            printer: Printer::new(format),
            locked: global.locked,
            locked_schema: global.locked_schema,
            synced: std::sync::Mutex::new(None),
        })
    }

    /// Brings migrations/anonmigrate.lock up to date (or only reports, or refuses under `--locked`) and prints
    /// the one line that says what changed. A chain that does not load is left to the command to report.
    pub fn sync_lock(&self, policy: LockPolicy) -> anyhow::Result<()> {
        let policy = if self.locked { LockPolicy::Locked } else { policy };
        if !self.workspace.migrations_dir.is_dir() {
            if policy == LockPolicy::Locked {
                return Err(anonmigrate_core::Error::Integrity(format!(
                    "--locked: there is no migrations directory at {} (and so no lock file); nothing was changed",
                    self.workspace.migrations_dir.display()
                ))
                .into());
            }
            return Ok(());
        }
        let Ok(chain) = self.chain() else { return Ok(()) };
        let synced = lock_sync::sync(&chain, policy)?;
        if let Some(message) = synced.message() {
            note(&if synced.is_warning() { format!("warning: {message}") } else { message });
        }
        *self.synced.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(chain);
        Ok(())
    }

    /// `--locked` forbids commands whose job is to change the lock file.
    pub fn refuse_if_locked(&self, what: &str) -> anyhow::Result<()> {
        if self.locked {
            return Err(anonmigrate_core::Error::Integrity(format!(
                "--locked: {what}, which changes migrations/anonmigrate.lock; nothing was changed; run it without --locked"
            ))
            .into());
        }
        Ok(())
    }

    pub fn chain(&self) -> anyhow::Result<Chain> {
        Ok(Chain::load(&self.workspace.migrations_dir)?)
    }

    /// The chain as [`Context::sync_lock`] just loaded it (syncing writes only the lock file), else loaded now; for a
    /// command that reads the chain first thing, before it changes any file.
    pub fn synced_chain(&self) -> anyhow::Result<Chain> {
        match self.synced.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            Some(chain) => Ok(chain),
            None => self.chain(),
        }
    }

    pub fn database(&mut self, chain: Option<&Chain>) -> anyhow::Result<DatabaseUrl> {
        Ok(anonmigrate_core::target::resolve(&self.workspace, chain, &mut self.printer)?)
    }

    /// The database for a command that changes it: the direct URL when one is set.
    pub fn database_for_changes(&mut self, chain: Option<&Chain>) -> anyhow::Result<DatabaseUrl> {
        Ok(anonmigrate_core::target::resolve_for_changes(&self.workspace, chain, &mut self.printer)?)
    }

    /// The chain, the database in use and where it stands (read-only: no lock, nothing created; a managed
    /// database that was dropped is reported missing, not silently created again).
    pub fn status(&mut self) -> anyhow::Result<(Chain, DatabaseUrl, anonmigrate_core::status::Status)> {
        let chain = self.chain()?;
        let url = anonmigrate_core::target::server(&self.workspace, Some(&chain), &mut self.printer)?;
        let mut conn = anonmigrate_core::db::connect(&url)?;
        let (status, _) = anonmigrate_core::runner::read_status(&mut conn, &chain)?;
        Ok((chain, url, status))
    }

    pub fn lock_timeout(&self, flag: Option<&str>) -> anyhow::Result<Duration> {
        match flag {
            Some(text) => anonmigrate_core::config::parse_duration(text)
                .map_err(anyhow::Error::msg)
                .context("invalid --lock-timeout"),
            None => Ok(self.workspace.run_lock_timeout()?),
        }
    }
}

/// Outside any Cargo project the current directory is the root. Said once; and a `migrations` directory that
/// does not exist there is not assumed (`generate` would create it wherever the command happened to run):
/// the user names the directory with --migrations-dir, or runs the command inside the project.
fn outside_cargo_project(workspace: &Workspace, explicit_dir: bool, needs_migrations: bool) -> anyhow::Result<()> {
    let root = workspace.root.display();
    if needs_migrations && !explicit_dir && !workspace.migrations_dir.is_dir() {
        return Err(anonmigrate_core::Error::Config(format!(
            "not in a Cargo project (no Cargo.toml in {root} or above) and there is no migrations directory at {}; run the command inside your project, pass --manifest-path, or name the migrations directory with --migrations-dir",
            workspace.migrations_dir.display()
        ))
        .into());
    }
    crate::output::note(&format!(
        "note: not in a Cargo project (no Cargo.toml in {root} or above): working on {}",
        workspace.migrations_dir.display()
    ));
    Ok(())
}

/// The version of the migration `arg` names in any spelling diesel uses (`20250115090400`,
/// `2025-01-15-090400`, the directory name or its path); otherwise a usage error (exit 2) with the candidates.
pub fn migration_version(chain: &Chain, what: &str, arg: &str) -> anyhow::Result<String> {
    if let Some(migration) = chain.resolve(arg) {
        return Ok(migration.version.clone());
    }
    let candidates = chain.candidates(arg);
    let hint = if candidates.is_empty() {
        format!("{} has no migrations", chain.dir.display())
    } else {
        format!("candidates: {}", candidates.join(", "))
    };
    Err(crate::exit::UsageError(format!(
        "{what} `{arg}`: no migration in {} has that version or directory name ({hint}); name one by version (20250115090400 or 2025-01-15-090400) or directory name, as `cargo anonmigrate history` lists them",
        chain.dir.display()
    ))
    .into())
}

/// [`migration_version`] for an optional flag.
pub fn optional_version(chain: &Chain, what: &str, arg: Option<&String>) -> anyhow::Result<Option<String>> {
    arg.map(|a| migration_version(chain, what, a)).transpose()
}

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // Completions need no workspace: they work anywhere.
    if let Command::Completions { shell } = cli.command {
        return completions::completions(shell);
    }
    // diesel's spellings (`migration run`, `database setup`) are the same commands.
    let command = match cli.command {
        Command::Migration(command) => command.into_command(),
        Command::Database(DatabaseCommand::Setup(args)) => Command::Setup(args),
        command => command,
    };
    // `setup` creates a missing migrations directory inside a Cargo project; outside one it is not invented.
    let needs_migrations = !matches!(command, Command::Server(_));
    let mut ctx = Context::new(&cli.global, needs_migrations, matches!(command, Command::Generate(_)))?;
    if let Some(policy) = lock_policy(&command) {
        ctx.sync_lock(policy)?;
    } else if ctx.locked
        && !matches!(command, Command::Check(_) | Command::Server(_) | Command::Cache(_) | Command::Setup(_) | Command::Database(_))
    {
        ctx.sync_lock(LockPolicy::Locked)?;
    }
    match command {
        Command::Setup(args) => database::setup(&mut ctx, &args),
        Command::Pending => status::pending(&mut ctx),
        Command::Migration(_) => unreachable!("rewritten above"),
        Command::Run(args) => run::run(&mut ctx, &args),
        Command::Revert(args) => run::revert(&mut ctx, &args),
        Command::Redo(args) => run::redo(&mut ctx, &args),
        Command::Status(args) => status::status(&mut ctx, &args),
        Command::History(args) => history::history(&mut ctx, &args),
        Command::Generate(args) => generate::generate(&mut ctx, &args),
        Command::Schema(args) => schema::schema(&mut ctx, &args),
        Command::Lock => generate::lock(&ctx),
        Command::Accept(args) => maintenance::accept(&mut ctx, &args),
        Command::Stamp(args) => maintenance::stamp(&mut ctx, &args),
        Command::Import(ImportCommand::Alembic(args)) => import::alembic(&ctx, &args),
        Command::Baseline(args) => import::baseline(&mut ctx, &args),
        Command::Heads => maintenance::heads(&ctx),
        Command::Merge => maintenance::merge(&mut ctx),
        Command::Doctor => doctor::doctor(&ctx),
        Command::Lint(args) => lint::lint(&ctx, &args),
        Command::Check(args) => check::check(&mut ctx, &args),
        Command::Completions { .. } => unreachable!("handled before the workspace is read"),
        Command::Fleet(command) => fleet::fleet(&mut ctx, &command),
        Command::Database(command) => database::database(&mut ctx, &command),
        Command::Server(command) => server::server(&ctx, &command),
        Command::Cache(command) => cache::cache(&mut ctx, &command),
    }
}

/// How a command treats migrations/anonmigrate.lock before it starts, like cargo with Cargo.lock: commands that
/// work on the chain bring it up to date, read-only ones report a stale one. `None`: the command has its own
/// rule (`check` is strict, `heads`/`merge` read a conflicted file, `doctor` reports it as a check, `lock` rewrites
/// it) or does not use the chain; `--locked` still checks for those that read the chain.
fn lock_policy(command: &Command) -> Option<LockPolicy> {
    match command {
        Command::Run(args) if args.dry_run => Some(LockPolicy::ReadOnly),
        Command::Schema(args) if args.from_database => Some(LockPolicy::ReadOnly),
        Command::Run(_)
        | Command::Revert(_)
        | Command::Redo(_)
        | Command::Generate(_)
        | Command::Schema(_)
        | Command::Lint(_)
        | Command::Accept(_)
        | Command::Stamp(_)
        | Command::Baseline(_)
        | Command::Database(DatabaseCommand::Reset { .. }) => Some(LockPolicy::Update),
        Command::Status(_) | Command::History(_) | Command::Pending => Some(LockPolicy::ReadOnly),
        // Once for the whole fleet, before any target.
        Command::Fleet(FleetCommand::Run(_)) => Some(LockPolicy::Update),
        Command::Fleet(FleetCommand::Status(_) | FleetCommand::Check(_)) => Some(LockPolicy::ReadOnly),
        Command::Heads
        | Command::Import(_)
        | Command::Merge
        | Command::Doctor
        | Command::Lock
        | Command::Check(_)
        | Command::Setup(_)
        | Command::Migration(_)
        | Command::Database(DatabaseCommand::Setup(_))
        | Command::Completions { .. }
        | Command::Database(DatabaseCommand::Drop { .. })
        | Command::Server(_)
        | Command::Cache(_) => None,
    }
}

/// Asks on a terminal; without one, `--yes` is the only way to confirm.
pub fn confirm(question: &str, yes: bool, flag_hint: &str) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(anonmigrate_core::Error::Refused(format!(
            "{question}: refusing without confirmation because stdin is not a terminal; pass {flag_hint}"
        ))
        .into());
    }
    // Not eprint!: it panics when stderr is a closed pipe.
    let _ = write!(std::io::stderr().lock(), "{question}? [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(anonmigrate_core::Error::Refused("not confirmed; nothing was changed".into()).into())
    }
}
