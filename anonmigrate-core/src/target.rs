//! Resolves which database a command talks to: the configured URL, or the managed local development server
//! (started on first use and left running, its data kept under the workspace's target directory).

use anonmigrate_chain::Chain;

use crate::config::Workspace;
use crate::database_url::{DatabaseUrl, UrlSource};
use crate::error::Result;
use crate::events::{Event, Observer};
use crate::local_server::{self, Cluster};

/// The managed development cluster of a workspace (not started by this call).
pub fn dev_cluster(workspace: &Workspace, required_extensions: &[String], provision: bool) -> Result<Cluster> {
    let binaries = local_server::find_binaries(required_extensions, provision)?;
    Ok(Cluster::new(workspace.dev_server_dir(), binaries))
}

/// The URL to use. With nothing configured, starts the managed local server if needed, creates its database
/// (it is ours to manage), and says so through the observer.
pub fn resolve(workspace: &Workspace, chain: Option<&Chain>, observer: &mut dyn Observer) -> Result<DatabaseUrl> {
    if let Some(url) = workspace.configured_url()? {
        return Ok(url);
    }
    let url = local_server_url(workspace, chain, observer)?;
    if crate::setup::create_database(&url)? {
        observer.event(Event::Created {
            what: format!("database `{}` on the managed local server", url.database()),
        });
    }
    Ok(url)
}

/// The URL for commands that change the database: the direct URL when one is configured (DATABASE_URL may go
/// through a transaction pooler, where the migration lock and session settings do not hold), else [`resolve`].
pub fn resolve_for_changes(workspace: &Workspace, chain: Option<&Chain>, observer: &mut dyn Observer) -> Result<DatabaseUrl> {
    match workspace.direct_url()? {
        Some(url) => Ok(url),
        None => resolve(workspace, chain, observer),
    }
}

/// The configured URL, or the managed local server's (started if needed) without creating its database: for
/// work that uses a database of its own on that server, like the scratch database of `schema`.
pub fn server(workspace: &Workspace, chain: Option<&Chain>, observer: &mut dyn Observer) -> Result<DatabaseUrl> {
    match workspace.configured_url()? {
        Some(url) => Ok(url),
        None => local_server_url(workspace, chain, observer),
    }
}

fn local_server_url(workspace: &Workspace, chain: Option<&Chain>, observer: &mut dyn Observer) -> Result<DatabaseUrl> {
    let extensions = crate::setup::required_extensions(workspace, chain);
    let cluster = dev_cluster(workspace, &extensions, true)?;
    let started = cluster.ensure_running(false)?;
    let url = DatabaseUrl::parse(&cluster.url(&workspace.dev_database()), UrlSource::LocalServer)?;
    observer.event(Event::UsingLocalServer {
        description: format!(
            "{} (server binaries: {}; `cargo anonmigrate server stop` stops it)",
            url.describe(),
            cluster.binaries.source
        ),
        started,
    });
    Ok(url)
}
