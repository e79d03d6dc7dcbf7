//! `server status|start|stop|url|install`: the managed local development server.

use std::process::ExitCode;

use anonmigrate_core::chain::Chain;
use anonmigrate_core::{local_server, setup, target};

use super::Context;
use crate::cli::ServerCommand;
use crate::output::out;

pub fn server(ctx: &Context, command: &ServerCommand) -> anyhow::Result<ExitCode> {
    if let ServerCommand::Install = command {
        let binaries = local_server::provision()?;
        out(&format!("PostgreSQL + pgvector binaries ready in {}", binaries.bindir.display()));
        return Ok(ExitCode::SUCCESS);
    }
    let chain = Chain::load(&ctx.workspace.migrations_dir).ok();
    let extensions = setup::required_extensions(&ctx.workspace, chain.as_ref());
    let provision = matches!(command, ServerCommand::Start);
    let cluster = target::dev_cluster(&ctx.workspace, &extensions, provision)?;
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
            out(&format!("binaries: {} ({})", cluster.binaries.bindir.display(), cluster.binaries.source));
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
        ServerCommand::Install => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
