//! `server status|start|stop|url|install`: the managed local development server.

use std::process::ExitCode;

use anonmigrate_core::chain::Chain;
use anonmigrate_core::{local_server, setup, target};

use super::Context;
use crate::cli::ServerCommand;
use crate::output::out;

pub fn server(ctx: &Context, command: &ServerCommand) -> anyhow::Result<ExitCode> {
    if let ServerCommand::Install { postgres } = command {
        let major = match postgres {
            Some(text) => local_server::parse_major(text, "--postgres")?,
            None => ctx.workspace.postgres_major()?.unwrap_or(local_server::DEFAULT_MAJOR),
        };
        let binaries = local_server::provision(major)?;
        out(&format!(
            "PostgreSQL {major} + pgvector {} binaries ready in {}",
            binaries.extension_version("vector").unwrap_or_else(|| "?".into()),
            binaries.bindir.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let chain = Chain::load(&ctx.workspace.migrations_dir).ok();
    let extensions = setup::required_extensions(&ctx.workspace, chain.as_ref());
    let provision = matches!(command, ServerCommand::Start);
    // status explains a data directory of another major version, and stop must still be able to stop it.
    let cluster = if matches!(command, ServerCommand::Status | ServerCommand::Stop) {
        target::dev_cluster_unchecked(&ctx.workspace, &extensions, provision)?
    } else {
        target::dev_cluster(&ctx.workspace, &extensions, provision)?
    };
    match command {
        ServerCommand::Status => {
            let state = if cluster.is_running() {
                "running"
            } else if cluster.is_initialised() {
                "stopped"
            } else {
                "not created yet (any database command creates it)"
            };
            out(&format!("managed server: {state}"));
            out(&format!("data: {}", cluster.data_dir().display()));
            let recorded = cluster.recorded_bindir().is_some_and(|dir| dir == cluster.binaries.bindir);
            out(&format!(
                "binaries: {} ({}{})",
                cluster.binaries.bindir.display(),
                cluster.binaries.source,
                if recorded { "; recorded when the server was created, kept for it" } else { "" }
            ));
            let pgvector = cluster
                .binaries
                .extension_version("vector")
                .map_or_else(|| "no pgvector".to_owned(), |v| format!("pgvector {v}"));
            let postgres = cluster.server_version().unwrap_or_else(|| "PostgreSQL (version unknown)".into());
            out(&format!("version: {postgres}, {pgvector}"));
            if let Some(mismatch) = target::version_mismatch(&cluster) {
                out(&format!("warning: {mismatch}"));
            }
            out(&format!("url: {}", cluster.url(&ctx.workspace.dev_database())));
        }
        ServerCommand::Start => {
            let started = cluster.ensure_running(false)?;
            out(if started { "managed server started" } else { "managed server already running" });
        }
        ServerCommand::Stop => {
            if cluster.is_running() {
                cluster.stop(false)?;
                out("managed server stopped; its data is kept");
            } else {
                out("managed server is not running");
            }
        }
        ServerCommand::Url => out(&cluster.url(&ctx.workspace.dev_database())),
        ServerCommand::Install { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
