//! The command line as clap types: `cargo anonmigrate <command>` (also `cargo-anonmigrate <command>`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cargo runs `cargo-anonmigrate anonmigrate ...`; the outer enum absorbs that extra word.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap::builder::Styles::plain())]
pub enum CargoCli {
    Anonmigrate(Cli),
}

const ABOUT: &str = "Diesel-compatible PostgreSQL (+ pgvector) migrations with locking, checksums and a drift gate";

const LONG_ABOUT: &str = "\
Diesel-compatible PostgreSQL (+ pgvector) migrations with locking, checksums and a drift gate.

Migrations live in <workspace>/migrations/<version>_<name>/{up.sql,down.sql[,metadata.toml]}, exactly as diesel_cli lays them out, and are recorded in diesel's __diesel_schema_migrations table.

Database: --database-url, else DATABASE_URL in the environment, else DATABASE_URL in <workspace>/.env, else a managed local PostgreSQL server kept under target/anonmigrate (started on first use).

Commands that change the database (setup, run, revert, redo, accept, stamp, database) use the direct URL instead when one is set: --direct-url, else DIRECT_URL (environment, then .env), else direct-url in [workspace.metadata.anonmigrate]. Set it when DATABASE_URL goes through a connection pooler in transaction mode (PgBouncer, Supavisor): migrations need a session of their own, and refuse (exit 13) without one.";

#[derive(Debug, Args)]
#[command(version = env!("ANONMIGRATE_LONG_VERSION"), about = ABOUT, long_about = LONG_ABOUT, after_help = crate::exit::HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// PostgreSQL URL (postgres://, postgresql://, postgresql+asyncpg:// ...); overrides DATABASE_URL and .env
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// The server's own URL, for commands that change the database when the database URL goes through a
    /// pooler; overrides DIRECT_URL and [workspace.metadata.anonmigrate] direct-url
    #[arg(long, global = true, value_name = "URL")]
    pub direct_url: Option<String>,
    /// Path to the workspace's Cargo.toml
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Migrations directory [default: <workspace root>/migrations, or [workspace.metadata.anonmigrate] migrations-dir]
    #[arg(long, global = true, value_name = "DIR", visible_alias = "migration-dir", env = "MIGRATION_DIRECTORY")]
    pub migrations_dir: Option<PathBuf>,
    /// The diesel.toml to read (diesel's flag) [default: DIESEL_CONFIG_FILE, else <workspace root>/diesel.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Refuse to update migrations/anonmigrate.lock: exit 7, before anything is touched, when it does not match the
    /// migrations on disk (as cargo's --locked does for Cargo.lock; use it in CI and deployments)
    #[arg(long, global = true)]
    pub locked: bool,
    /// diesel's flag: refuse (exit 7, before anything is applied) when schema.rs is not what the migrations
    /// give, and never rewrite it; honoured by `run` and `setup`, accepted (schema.rs is not written) by the rest
    #[arg(long, global = true)]
    pub locked_schema: bool,
    /// Output format of status, history, run (and --dry-run), revert, redo, schema, lint, check and doctor; other
    /// commands print text (`generate --format sql`: diesel's migration format, accepted)
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `--format` as typed: the output format, or (for `generate`, as diesel spells it) the migration's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
    /// `generate --format sql`: diesel's migration format, the only one there is
    Sql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Like diesel setup: create what is missing (migrations directory, diesel.toml, the database, the extensions
    /// the chain needs, the bookkeeping tables), then apply the pending migrations
    #[command(after_help = SETUP_HELP)]
    Setup(SetupArgs),

    /// Apply pending migrations in order, each in its own transaction unless marked non-transactional
    #[command(after_help = "Examples:\n  cargo anonmigrate run\n  cargo anonmigrate run --step 1\n  cargo anonmigrate run --to 20250115090300\n  cargo anonmigrate run --dry-run\n  cargo anonmigrate run --sql --from 20250115090200 > deploy.sql")]
    Run(RunArgs),

    /// Revert applied migrations, newest first (default: one)
    #[command(after_help = "Examples:\n  cargo anonmigrate revert\n  cargo anonmigrate revert --step 2          # or -n 2, as diesel spells it\n  cargo anonmigrate revert --all --yes\n  cargo anonmigrate revert --sql --step 2 > rollback.sql\n\nA migration whose down.sql is missing, empty or only comments is irreversible: revert refuses it before changing anything (`stamp --delete VERSION` forgets it without undoing it).")]
    Revert(RevertArgs),

    /// Revert and re-apply the newest migrations (default: one) in one transaction, to test a down.sql
    #[command(after_help = "Examples:\n  cargo anonmigrate redo\n  cargo anonmigrate redo -n 2\n  cargo anonmigrate redo --all\n\nWhen every migration involved is transactional (the default), each down.sql, each up.sql and the bookkeeping run in one transaction: a failure anywhere changes nothing. A migration with `run_in_transaction = false` cannot run inside it; such a redo reverts, then applies again, step by step (and says so).")]
    Redo(RedoArgs),

    /// Show the current version, pending migrations and anything applied that is no longer on disk
    #[command(visible_alias = "current", after_help = "Examples:\n  cargo anonmigrate status\n  cargo anonmigrate status --exit-code   # non-zero unless up to date (CI, app start-up)")]
    Status(StatusArgs),

    /// List every migration, applied or pending, with when it ran
    #[command(visible_alias = "list", after_help = "Example:\n  cargo anonmigrate history --verbose")]
    History(HistoryArgs),

    /// Create a new migration directory <version>_<NAME> with up.sql and down.sql
    #[command(after_help = "Examples:\n  cargo anonmigrate generate add_users\n  cargo anonmigrate generate index_messages --non-transactional")]
    Generate(GenerateArgs),

    /// Regenerate schema.rs from the migrations (replayed into a temporary database), as diesel print-schema writes it
    #[command(
        after_help = "Examples:\n  cargo anonmigrate schema\n  cargo anonmigrate schema --stdout\n  cargo anonmigrate schema --from-database --database-url postgres://app@localhost/anonchat\n\nThe file is diesel.toml's [print_schema] `file` (each [print_schema.<key>] section writes its own), or `schema-file` in [workspace.metadata.anonmigrate]; without either the schema is printed. The temporary database is always dropped. Hand edits of schema.rs that no migration explains are not overwritten (exit 8): turn them into a migration with `generate NAME --autogenerate`, or discard them with --force."
    )]
    Schema(SchemaArgs),

    /// Rewrite migrations/anonmigrate.lock from the migrations on disk (every command that works on the chain does it too)
    #[command(after_help = "Example:\n  cargo anonmigrate lock && git add migrations/anonmigrate.lock")]
    Lock,

    /// Record the current up.sql hash of an applied migration that was edited on purpose (old hash kept for audit)
    #[command(after_help = "Example:\n  cargo anonmigrate accept 20250115090100")]
    Accept(AcceptArgs),

    /// Mark migrations up to VERSION as applied without running them (baseline an existing database)
    #[command(after_help = "Examples:\n  cargo anonmigrate stamp 20250115090400         # the schema already exists\n  cargo anonmigrate stamp --delete 20250115090400  # forget one record, no SQL run\n  cargo anonmigrate stamp --from-alembic           # continue where Alembic stopped (after `import alembic`)\n\nWith --from-alembic the revision comes from the database's alembic_version table: the imported migration of that revision and everything before it are recorded as applied (exit 8 when the revision is not in the imported chain).")]
    Stamp(StampArgs),

    /// Import a migration history from another tool (Alembic) as diesel-format migrations
    #[command(subcommand)]
    Import(ImportCommand),

    /// Write one migration holding the live database's schema (pg_dump --schema-only, cleaned) and record it as applied there
    #[command(
        after_help = "Example:\n  cargo anonmigrate baseline initial_schema --database-url postgres://app@prod-replica/anonchat\n\nFor a database with no usable migration history: extensions, types, tables, indexes, constraints, functions and views, no data. pg_dump comes from the server's own major version (the managed server's binaries, ANONMIGRATE_PG_BINDIR, pg_config on PATH or /usr/lib/postgresql; a newer one if that is all there is). Ownership, privileges, pg_dump's SET preamble and the bookkeeping tables (__diesel_schema_migrations, __anonmigrate_*, alembic_version) are left out. down.sql drops what up.sql creates. The migration is recorded as applied on that database (run then continues from it); migrations on disk that it has not applied make it refuse (exit 8)."
    )]
    Baseline(BaselineArgs),

    /// List migrations on disk that migrations/anonmigrate.lock does not know yet; after a conflicted git merge, what each branch added
    #[command(after_help = "Example:\n  cargo anonmigrate heads")]
    Heads,

    /// After a git merge: resolve a conflicted lock file (both sides, in chain order) and move pending migrations the database shows out of order after its newest applied one
    #[command(
        after_help = "Example (git reported a conflict in migrations/anonmigrate.lock):\n  cargo anonmigrate merge && git add migrations && git commit\n\nThe database consulted is the one `run` would use (--database-url, DATABASE_URL, .env, or the managed server if it exists); without one nothing is renamed for order. Two migrations that share a version (both branches generated one in the same second) are separated: yours keeps it. Renames are recorded in the lock file, so a database that applied a renamed migration under its old version moves its record on the next `run` instead of applying it again."
    )]
    Merge,

    /// Check the setup step by step (URL, server, database, extensions, privileges, migrations, lock file, drift)
    #[command(after_help = "Example:\n  cargo anonmigrate doctor\n\nExit code 1 when any check fails.")]
    Doctor,

    /// Find migrations that would lock or break a live database (PostgreSQL's own parser; rules in docs/lint-rules.md)
    #[command(after_help = "Examples:\n  cargo anonmigrate lint                   # every migration after the configured baseline\n  cargo anonmigrate lint 20250115090400    # one migration, by version or directory name\n  cargo anonmigrate lint --format json\n\nExit code 1 when a deny-level rule fires, 0 with only warnings.\nSilence one statement with a comment above it: -- anonmigrate:allow RULE-ID REASON")]
    Lint(LintArgs),

    /// The CI gate: lock file, schema.rs vs the migrations, every down.sql, lint, and with --database the live database
    #[command(
        after_help = "Examples:\n  cargo anonmigrate check\n  cargo anonmigrate check --database        # also compare DATABASE_URL's schema with the migrations\n  cargo anonmigrate check --format json\n  cargo anonmigrate check --schema-file src/schema.rs --no-down-check\n\nThe migrations are replayed into a temporary database (always dropped); each one is applied, reverted and applied again there, and reverting everything must leave an empty schema. The configured database is only read, and only with --database.\nExit codes: 7 lock file, 9 schema.rs, 10 down.sql, 11 live database, 12 lint (the first failing section wins)."
    )]
    Check(CheckArgs),

    /// Print a shell completion script
    #[command(after_help = "Example:\n  cargo anonmigrate completions bash > ~/.local/share/bash-completion/completions/cargo-anonmigrate")]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },

    /// Migrate many databases or tenant schemas (database or schema per tenant, shards): status, run, check
    #[command(subcommand, after_help = FLEET_TARGETS_HELP)]
    Fleet(FleetCommand),

    /// Print `true` when migrations are pending, else `false` (exit 0 either way), as diesel migration pending
    #[command(after_help = "Example:\n  test \"$(cargo anonmigrate pending)\" = false || cargo anonmigrate run\n\n`status --exit-code` is the same question as an exit code (3 when not up to date).")]
    Pending,

    /// diesel_cli's spelling of the migration commands: `migration run|revert|redo|list|pending|generate`
    #[command(subcommand, after_help = "Example (a Makefile line written for diesel_cli):\n  cargo anonmigrate migration redo -n 2")]
    Migration(MigrationCommand),

    /// Set up, drop or reset (drop, set up, run) the database
    #[command(subcommand, visible_alias = "db")]
    Database(DatabaseCommand),

    /// Manage the local development server used when no database URL is configured
    #[command(subcommand)]
    Server(ServerCommand),

    /// List or drop the template databases that make replays fast (schema, check, test databases)
    #[command(
        subcommand,
        after_help = "Replays keep a template database per chain prefix (named anonmigrate_tpl_<workspace>_<migrations>_<hash>, four per workspace, six at most between evictions) on the server they replay on, and copy the longest unchanged prefix instead of applying every migration. Nothing connects to a template; `cache clear` drops them (they are rebuilt on the next replay). Test databases (anonmigrate_core::testdb) also keep up to four spare copies of the current chain's template ready (anonmigrate_spare_<workspace>_<migrations>_<hash>_<k>; ANONMIGRATE_TEST_SPARES sets how many, 0 none); `cache list` counts them and `cache clear` drops them too. Set ANONMIGRATE_TEMPLATE_CACHE=0 to replay without templates."
    )]
    Cache(CacheCommand),
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the template databases (this workspace's, or every workspace's with --all): migrations, size, spare copies, last use
    #[command(after_help = "Example:\n  cargo anonmigrate cache list")]
    List {
        /// Every anonmigrate template on the server, not only this workspace's
        #[arg(long)]
        all: bool,
    },
    /// Drop the template databases and their spare copies (this workspace's, or every workspace's with --all)
    #[command(after_help = "Example:\n  cargo anonmigrate cache clear")]
    Clear {
        /// Every anonmigrate template on the server, not only this workspace's
        #[arg(long)]
        all: bool,
    },
}

const SETUP_HELP: &str = "Examples:\n  cargo anonmigrate setup --database-url postgres://app@localhost/anonchat\n  cargo anonmigrate setup --no-run\n\nWhat is missing is created, as diesel setup does: the migrations directory (with diesel's 00000000000000_diesel_initial_setup migration unless --no-default-migration, and only when the directory is new), and then diesel.toml at the workspace root if there is none (with [print_schema] file = \"src/schema.rs\" unless [workspace.metadata.anonmigrate] names a schema-file; an existing project's configuration is never added to), the database, the extensions the chain's CREATE EXTENSIONs need, the bookkeeping tables. Then the pending migrations run, unless --no-run. Running it again changes nothing.";

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// Do not apply the pending migrations afterwards
    #[arg(long)]
    pub no_run: bool,
    /// When the migrations directory is created, do not add diesel's 00000000000000_diesel_initial_setup migration
    #[arg(long)]
    pub no_default_migration: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Subcommand)]
pub enum MigrationCommand {
    /// = `run`
    Run(RunArgs),
    /// = `revert`
    Revert(RevertArgs),
    /// = `redo`
    Redo(RedoArgs),
    /// = `history`, printed as diesel migration list prints it
    List(HistoryArgs),
    /// = `pending`
    Pending,
    /// = `generate`
    Generate(GenerateArgs),
}

impl MigrationCommand {
    pub fn into_command(self) -> Command {
        match self {
            MigrationCommand::Run(args) => Command::Run(args),
            MigrationCommand::Revert(args) => Command::Revert(args),
            MigrationCommand::Redo(args) => Command::Redo(args),
            // Scripts written for diesel read its text (`[ ]` marks a pending migration), so it is printed as is.
            MigrationCommand::List(args) => Command::History(HistoryArgs { diesel_list: true, ..args }),
            MigrationCommand::Pending => Command::Pending,
            MigrationCommand::Generate(args) => Command::Generate(args),
        }
    }
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// How long to wait for another runner's migration lock (e.g. 30s, 5m)
    #[arg(long, value_name = "DURATION")]
    pub lock_timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Apply up to and including this migration (version with or without dashes, or directory name)
    #[arg(long, value_name = "VERSION", conflicts_with = "step")]
    pub to: Option<String>,
    /// Apply at most N migrations
    #[arg(long, value_name = "N")]
    pub step: Option<usize>,
    /// Do not regenerate schema.rs afterwards
    #[arg(long)]
    pub no_schema: bool,
    /// Run even though applied migrations are missing on disk
    #[arg(long)]
    pub ignore_missing: bool,
    /// Apply pending migrations older than the newest applied one
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// Print the SQL script run would send (for psql -v ON_ERROR_STOP=1 -f) without connecting; covers the whole
    /// chain unless --from/--to/--step narrow it
    #[arg(long, conflicts_with = "dry_run")]
    pub sql: bool,
    /// With --sql: the database is assumed to be at VERSION already; the script starts after it
    #[arg(long, value_name = "VERSION", requires = "sql")]
    pub from: Option<String>,
    /// Connect, report what run would apply and why (pending, out of order, resume at statement N), change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// Revert the N newest applied migrations (0 reverts nothing)
    #[arg(long, short = 'n', visible_alias = "number", value_name = "N", conflicts_with_all = ["to", "all"])]
    pub step: Option<usize>,
    /// Revert everything applied after this migration (it stays applied; version or directory name)
    #[arg(long, value_name = "VERSION", conflicts_with = "all")]
    pub to: Option<String>,
    /// Revert every applied migration (needs --yes when stdin is not a terminal: their down.sql may drop data)
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Confirm --all without a prompt (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the SQL script revert would send without connecting; assumes every migration on disk is applied
    /// unless --from says otherwise
    #[arg(long)]
    pub sql: bool,
    /// With --sql: the database is assumed to be at VERSION (applied up to it); --step/--to/--all count from there
    #[arg(long, value_name = "VERSION", requires = "sql")]
    pub from: Option<String>,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct RedoArgs {
    /// Redo the N newest applied migrations [default: 1]
    #[arg(long, short = 'n', visible_alias = "number", value_name = "N", conflicts_with = "all")]
    pub step: Option<usize>,
    /// Redo every applied migration
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Accepted for scripts that pass it; redo asks nothing (it runs in one transaction when every migration
    /// involved is transactional)
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Exit with code 3 when the database is not up to date
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Add paths, transaction mode and file sizes
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print diesel migration list's text (`Migrations:`, then `  [X] name` / `  [ ] name`); set by `migration list`
    #[arg(skip)]
    pub diesel_list: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Migration name: letters, digits, `_` and `-`
    pub name: String,
    /// The version (the text before the `_`), used as given [default: the clock in UTC, as diesel writes it:
    /// YYYY-MM-DD-HHMMSS-0000, with -0001, -0002 … for more within one second]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Do not create down.sql (the migration is then irreversible)
    #[arg(long, short = 'u')]
    pub no_down: bool,
    /// Write metadata.toml with `run_in_transaction = false` (for CREATE INDEX CONCURRENTLY)
    #[arg(long)]
    pub non_transactional: bool,
    /// Write up.sql and down.sql from the difference between schema.rs (edited) and the migrations
    #[arg(long)]
    pub autogenerate: bool,
    /// With --autogenerate: a column was renamed, not dropped and added (repeatable)
    #[arg(long, value_name = "TABLE.OLD=NEW", requires = "autogenerate")]
    pub rename: Vec<String>,
    /// With --autogenerate: the dimension of a new pgvector column (repeatable)
    #[arg(long, value_name = "TABLE.COLUMN=N", requires = "autogenerate")]
    pub vector_dim: Vec<String>,
    /// With --autogenerate: the labels of a new enum type schema.rs names in sql_types (repeatable)
    #[arg(long, value_name = "TYPE=A,B,C", requires = "autogenerate")]
    pub enum_values: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print every configured section instead of writing the files
    #[arg(long)]
    pub stdout: bool,
    /// Print what the database at the URL gives instead of replaying the migrations (like diesel print-schema); writes nothing
    #[arg(long)]
    pub from_database: bool,
    /// Overwrite hand edits of schema.rs that no migration explains (without it, `schema` refuses, exit 8)
    #[arg(long, conflicts_with_all = ["stdout", "from_database"])]
    pub force: bool,
    /// Print how long the replay, the catalog read and the rendering took (stderr)
    #[arg(long, hide = true)]
    pub timings: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also compare the live database (--database-url, DATABASE_URL, .env or the managed server) with the migrations
    #[arg(long)]
    pub database: bool,
    /// Compare this schema.rs (e.g. a hand-maintained one) instead of the configured schema file(s)
    #[arg(long, value_name = "PATH", conflicts_with = "no_schema_check")]
    pub schema_file: Option<PathBuf>,
    /// Do not compare schema.rs with the migrations
    #[arg(long)]
    pub no_schema_check: bool,
    /// Do not check down.sql files (each must undo its up.sql, and reverting everything must leave nothing)
    #[arg(long)]
    pub no_down_check: bool,
    /// Do not run the linter
    #[arg(long)]
    pub no_lint: bool,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Migrations to lint, by version (20250115090400) or directory name [default: all after the baseline]
    #[arg(value_name = "MIGRATION")]
    pub migrations: Vec<String>,
    /// Apply squawk's mechanical fixes (the `fix:` lines) to up.sql files newer than the lint baseline; a migration
    /// the baseline covers (deployed) is never edited
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The applied migration whose file changed (version with or without dashes, or directory name)
    pub version: String,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct StampArgs {
    /// Migration to stamp up to (inclusive), or the one record to delete with --delete (version or directory name)
    #[arg(required_unless_present = "from_alembic")]
    pub version: Option<String>,
    /// Remove this version's record instead (its down.sql is not run)
    #[arg(long)]
    pub delete: bool,
    /// Stamp up to the migration imported from the Alembic revision in the database's alembic_version table
    #[arg(long, conflicts_with_all = ["version", "delete"])]
    pub from_alembic: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Write one migration per Alembic revision, from Alembic's offline SQL (`alembic upgrade --sql`)
    #[command(
        after_help = "Examples:\n  cd backend && cargo anonmigrate import alembic --migrations-dir ../migrations\n  cargo anonmigrate import alembic --config backend/alembic.ini --alembic backend/.venv/bin/alembic\n\nAlembic runs in the directory of its alembic.ini (its env.py gets the environment it usually does, e.g. DATABASE_URL; offline mode does not connect). Versions follow each revision's Create Date (one second apart where dates tie); names come from the revision message; metadata.toml keeps the Alembic revision id. up.sql and down.sql are Alembic's offline SQL without alembic_version and BEGIN/COMMIT. Merge revisions are linearised; unmerged heads are refused (exit 8: run `alembic merge`). Revisions whose Python talks to the live connection (op.get_bind()) or that change data are listed as warnings and marked `-- anonmigrate: REVIEW` in their files. Revisions imported before are left as they are, so running it again adds only new ones. Then: `stamp --from-alembic` on databases Alembic manages, `run` on new ones."
    )]
    Alembic(ImportAlembicArgs),
}

#[derive(Debug, Args)]
pub struct ImportAlembicArgs {
    /// Alembic's configuration file
    #[arg(long, short = 'c', value_name = "PATH", default_value = "alembic.ini")]
    pub config: PathBuf,
    /// The alembic command: a path to it, or words split at spaces (`python3 -m alembic`); no shell is involved
    #[arg(long, value_name = "CMD", default_value = "alembic")]
    pub alembic: String,
}

#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Migration name: letters, digits, `_` and `-`
    pub name: String,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// = `setup`
    #[command(after_help = SETUP_HELP)]
    Setup(SetupArgs),
    /// Drop the database, set it up again and apply every migration
    #[command(after_help = "Example:\n  cargo anonmigrate database reset --yes")]
    Reset {
        /// Confirm: everything in the database is lost
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Drop the database
    #[command(after_help = "Example:\n  cargo anonmigrate database drop --yes")]
    Drop {
        /// Confirm: everything in the database is lost
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Say whether the managed server is running, where, and which binaries it uses
    Status,
    /// Start the managed server (commands start it on demand anyway)
    Start,
    /// Stop the managed server; its data is kept
    Stop,
    /// Print the managed server's database URL (for psql or your app)
    Url,
    /// Download the pinned PostgreSQL + pgvector build into the cache (idempotent; sha256-checked)
    #[command(after_help = "Example:\n  cargo anonmigrate server install --postgres 16")]
    Install {
        /// PostgreSQL major version: 18 (default) or 16; default: `postgres` in [workspace.metadata.anonmigrate]
        #[arg(long, value_name = "MAJOR")]
        postgres: Option<String>,
    },
}

const FLEET_TARGETS_HELP: &str = "\
Targets, one of (or the same keys under [workspace.metadata.anonmigrate.fleet]):
  --databases-like PATTERN  databases on the server of --database-url whose name matches (SQL LIKE)
  --schemas-like PATTERN    schemas of the database of --database-url that match: one tenant each,
                            with its own bookkeeping tables; search_path is the tenant schema, then
                            --shared-schema (default public), where extensions are created once
  --targets FILE            one URL a line (# comments), on any number of servers
  --targets-query SQL       run on --database-url: one text column of URLs or database names

Targets are taken in listed order (LIKE patterns: by name); --canary K runs the first K first.";

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Where every target stands: version, pending migrations, partial or changed ones, and a version histogram
    #[command(after_help = FLEET_STATUS_HELP)]
    Status(FleetStatusArgs),
    /// Apply pending migrations to every target, --jobs at a time, canary first; one target's failure stays its own
    #[command(after_help = FLEET_RUN_HELP)]
    Run(FleetRunArgs),
    /// Compare each target's schema with what the migrations give at its version (check --database per target)
    #[command(after_help = FLEET_CHECK_HELP)]
    Check(FleetCheckArgs),
}

const FLEET_STATUS_HELP: &str = "\
Examples:
  cargo anonmigrate fleet status --databases-like 'tenant_%'
  cargo anonmigrate fleet status --targets shards.txt --exit-code

Choosing targets: `cargo anonmigrate fleet --help`.
Exit codes: 3 with --exit-code when a target is not up to date, 14 when a target cannot be read.";

const FLEET_RUN_HELP: &str = "\
Examples:
  cargo anonmigrate fleet run --databases-like 'tenant_%' --canary 2 --jobs 8
  cargo anonmigrate fleet run --schemas-like 'tenant\\_%' --format json
  cargo anonmigrate fleet run --targets shards.txt --max-failures 3
  cargo anonmigrate fleet run --databases-like 'tenant_%' --to 20250115090200

Each target gets what `run` gives one database: the migration lock, checksums, exactly-once, resumable non-transactional migrations; the lock file is checked once, before any target.

The canary targets run one at a time first; any failure among them stops the rollout with nothing else touched. After more than --max-failures failures (default 0: the first) no new target starts; those in flight finish. Ctrl-C does the same: in-flight targets finish or roll back, then the summary is printed (a second Ctrl-C exits at once; open transactions roll back). Running it again continues where it stopped.

Choosing targets: `cargo anonmigrate fleet --help`.
Exit code 14 when a target failed or the rollout stopped before every target ran.";

const FLEET_CHECK_HELP: &str = "\
Example:
  cargo anonmigrate fleet check --databases-like 'tenant_%'

The migrations are replayed once into a temporary database (always dropped) and every target is compared with the chain at its own version, as `check --database` compares one database. Targets are only read.

Choosing targets: `cargo anonmigrate fleet --help`.
Exit codes: 11 when a target differs from the migrations or is behind them, 14 when a target cannot be read.";

#[derive(Debug, Args)]
pub struct FleetTargetArgs {
    /// Every database on the server of --database-url whose name matches this SQL LIKE pattern
    #[arg(long, value_name = "PATTERN", group = "fleet_targets")]
    pub databases_like: Option<String>,
    /// Every schema of the database of --database-url whose name matches this SQL LIKE pattern (schema per tenant)
    #[arg(long, value_name = "PATTERN", group = "fleet_targets")]
    pub schemas_like: Option<String>,
    /// A file of target URLs, one a line (# comments)
    #[arg(long, value_name = "FILE", group = "fleet_targets")]
    pub targets: Option<PathBuf>,
    /// A query run on --database-url returning one text column of URLs or database names
    #[arg(long, value_name = "SQL", group = "fleet_targets")]
    pub targets_query: Option<String>,
    /// With --schemas-like: the schema(s) after the tenant's in search_path, where extensions are created [default: public]
    #[arg(long = "shared-schema", value_name = "SCHEMA")]
    pub shared_schemas: Vec<String>,
    /// Targets worked on at a time [default: twice the CPU cores, at most 16]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

#[derive(Debug, Args)]
pub struct FleetStatusArgs {
    #[command(flatten)]
    pub targets: FleetTargetArgs,
    /// Exit with code 3 when a target is not up to date
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct FleetRunArgs {
    #[command(flatten)]
    pub targets: FleetTargetArgs,
    /// Apply up to and including this migration on each target (version with or without dashes, or directory
    /// name): a rollout in stages; a target already past it is left as it is
    #[arg(long, value_name = "VERSION")]
    pub to: Option<String>,
    /// Run the first K targets first, one at a time; a failure among them stops the rollout
    #[arg(long, value_name = "K")]
    pub canary: Option<usize>,
    /// Failures tolerated before no new target starts [default: 0]
    #[arg(long, value_name = "M")]
    pub max_failures: Option<usize>,
    /// Apply a pending migration even when it is older than the newest applied one
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// Show what each target would apply (with --to and --allow-out-of-order), and where `run` would refuse;
    /// nothing is changed and no lock is taken
    #[arg(long, conflicts_with_all = ["canary", "max_failures"])]
    pub dry_run: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct FleetCheckArgs {
    #[command(flatten)]
    pub targets: FleetTargetArgs,
}
