//! `lint [MIGRATION...]`: resolves the workspace here, then runs the linter in `anonmigrate-lint-helper` (installed
//! next to this binary), which prints the findings; its exit code is passed on (0 clean or warnings only, 1 a deny
//! rule fired, 4 configuration problem). A separate process because libpg_query and the bundled libpq cannot share
//! one binary.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context as _;

use super::Context;
use crate::cli::{Format, LintArgs};

const HELPER: &str = "anonmigrate-lint-helper";
/// Overrides where the helper is looked for (tests, unusual installs).
const HELPER_VARIABLE: &str = "ANONMIGRATE_LINT_HELPER";

pub fn lint(ctx: &Context, args: &LintArgs) -> anyhow::Result<ExitCode> {
    // Directory problems are reported here, the same way as by every other command.
    ctx.chain()?;
    let (helper, mut command) = helper_command(ctx, &args.migrations, ctx.format == Format::Json)?;
    let status = command
        .status()
        .with_context(|| format!("cannot run the linter `{}`", helper.display()))?;
    match status.code() {
        Some(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(crate::exit::FAILURE))),
        None => anyhow::bail!("the linter `{}` was killed ({status})", helper.display()),
    }
}

/// The helper, ready to lint `migrations` (empty: every one after the baseline) of the workspace.
fn helper_command(ctx: &Context, migrations: &[String], json: bool) -> anyhow::Result<(PathBuf, Command)> {
    let workspace = &ctx.workspace;
    let request = serde_json::json!({
        "migrations_dir": workspace.migrations_dir,
        "config": workspace.settings.lint,
        "runner_lock_timeout": workspace.ddl_lock_timeout()?.is_some(),
        "migrations": migrations,
        "json": json,
        "base": std::env::current_dir().context("cannot read the current directory")?,
    });
    let helper = helper_path()?;
    let mut command = Command::new(&helper);
    command.arg("--request").arg(request.to_string());
    Ok((helper, command))
}

/// For `check`: lints every migration after the baseline and captures the helper's JSON report and exit code.
pub(super) fn lint_captured(ctx: &Context) -> anyhow::Result<std::process::Output> {
    let (helper, mut command) = helper_command(ctx, &[], true)?;
    command.output().with_context(|| format!("cannot run the linter `{}`", helper.display()))
}

fn helper_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(HELPER_VARIABLE) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("cannot locate the running executable")?;
    let helper = exe.with_file_name(format!("{HELPER}{}", std::env::consts::EXE_SUFFIX));
    if let Some((cargo, manifest)) = running_from_source_tree() {
        build_helper(&cargo, &manifest, &exe)?;
    }
    if !helper.is_file() {
        return Err(anonmigrate_core::Error::Config(format!(
            "the linter `{}` is missing: it is built and installed together with cargo-anonmigrate (`cargo build -p cargo-anonmigrate`, `cargo install --path cargo-anonmigrate`), or set {HELPER_VARIABLE}",
            helper.display()
        ))
        .into());
    }
    Ok(helper)
}

/// `cargo run -p cargo-anonmigrate` builds only the main binary. When it runs that way from this source tree
/// (cargo sets CARGO and CARGO_MANIFEST_DIR), the helper is built first, so lint never runs a missing or stale one.
fn running_from_source_tree() -> Option<(PathBuf, PathBuf)> {
    let cargo = PathBuf::from(std::env::var_os("CARGO")?);
    let package = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    package
        .join("src/bin")
        .join(format!("{HELPER}.rs"))
        .is_file()
        .then(|| (cargo, package.join("Cargo.toml")))
}

fn build_helper(cargo: &Path, manifest: &Path, exe: &Path) -> anyhow::Result<()> {
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--bin", HELPER, "--manifest-path"]).arg(manifest);
    // The same profile as the running binary: target/<profile dir>/cargo-anonmigrate.
    match exe.parent().and_then(|dir| dir.file_name()).and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let status = command.status().context("cannot run cargo to build the linter")?;
    anyhow::ensure!(status.success(), "building the linter (`{HELPER}`) failed; see cargo's output above");
    Ok(())
}
