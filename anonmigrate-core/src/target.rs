//! Resolves which database a command talks to: the configured URL, or the managed local development server
//! (started on first use and left running, its data kept under the workspace's target directory).

use anonmigrate_chain::Chain;

use crate::config::Workspace;
use crate::database_url::{DatabaseUrl, UrlSource};
use crate::error::Result;
use crate::events::{Event, Observer};
use crate::local_server::{self, Cluster};

/// The managed development cluster of a workspace (not started by this call). Refuses a data directory made
/// by another PostgreSQL major version than the binaries this workspace now gets.
pub fn dev_cluster(workspace: &Workspace, required_extensions: &[String], provision: bool) -> Result<Cluster> {
    let cluster = dev_cluster_unchecked(workspace, required_extensions, provision)?;
    match version_mismatch(&cluster) {
        Some(error) => Err(error),
        None => Ok(cluster),
    }
}

/// The managed cluster without the version check, for `server status`, `server stop` and `doctor`, which
/// report the mismatch (or stop the server) instead of refusing.
///
/// A cluster keeps the binaries it was created with (recorded in its directory): a chain that now needs an
/// extension, or a newer PostgreSQL installed since, never switches an existing cluster to other binaries. When
/// the recorded ones are gone or lack a required extension, that is the error, with the way out. An explicit
/// `ANONMIGRATE_PG_BINDIR` or major version (`postgres`, `ANONMIGRATE_POSTGRES`) other than the recorded one is
/// followed, and [`version_mismatch`] explains a data directory of another major version.
pub fn dev_cluster_unchecked(workspace: &Workspace, required_extensions: &[String], provision: bool) -> Result<Cluster> {
    let major = workspace.postgres_major()?;
    let dir = workspace.dev_server_dir();
    if let Some(recorded) = local_server::recorded_bindir(&dir)
        && dir.join("data/PG_VERSION").is_file()
        && std::env::var_os("ANONMIGRATE_PG_BINDIR").is_none_or(|explicit| recorded == std::path::Path::new(&explicit))
    {
        let recreate = format!(
            "or recreate the server on binaries that fit: `cargo anonmigrate server stop`, delete `{}` (its databases are lost) and run `cargo anonmigrate run` to rebuild them from the migrations",
            dir.display()
        );
        match local_server::candidate_binaries().into_iter().find(|c| c.bindir == recorded) {
            Some(binaries) if major.is_none_or(|m| binaries.major == Some(m)) => {
                let missing: Vec<&str> =
                    required_extensions.iter().filter(|e| !binaries.has_extension(e)).map(String::as_str).collect();
                if !missing.is_empty() {
                    return Err(crate::Error::ServerBinaries(format!(
                        "the managed server in `{}` was created with the server binaries in `{}` ({}), which lack the extension(s) {} the migrations now need; install them there, {recreate}",
                        dir.display(),
                        recorded.display(),
                        binaries.source,
                        missing.join(", ")
                    )));
                }
                return Ok(Cluster::new(dir, binaries));
            }
            // Another major version asked for: the usual choice, and `version_mismatch` explains the data directory.
            Some(_) => {}
            None => {
                return Err(crate::Error::ServerBinaries(format!(
                    "the managed server in `{}` was created with the server binaries in `{}`, which are no longer there (or no longer offered: ANONMIGRATE_PG_BINDIR unset, the cache removed or no longer private); restore them (`cargo anonmigrate server install` for the provisioned build, or ANONMIGRATE_PG_BINDIR={}), {recreate}",
                    dir.display(),
                    recorded.display(),
                    recorded.display()
                )));
            }
        }
    }
    let binaries = local_server::find_binaries(required_extensions, major, provision)?;
    Ok(Cluster::new(dir, binaries))
}

/// The error explaining why `cluster`'s data directory does not fit its binaries, if it does not.
pub fn version_mismatch(cluster: &Cluster) -> Option<crate::Error> {
    let cluster_major = cluster.data_major()?;
    let binaries_major = cluster.binaries.major?;
    if cluster_major == binaries_major {
        return None;
    }
    let dir = cluster.root.clone();
    let keep = if local_server::PROVISIONED_BUILDS.iter().any(|b| b.major == cluster_major) {
        format!(
            "To keep it, set `postgres = \"{cluster_major}\"` in [workspace.metadata.anonmigrate] (or ANONMIGRATE_POSTGRES={cluster_major})"
        )
    } else {
        format!("To keep it, set ANONMIGRATE_PG_BINDIR to a PostgreSQL {cluster_major} bin directory")
    };
    let fix = format!(
        "{keep}; to recreate it on PostgreSQL {binaries_major}, run `cargo anonmigrate server stop`, delete `{}` (its databases are lost) and run `cargo anonmigrate run` to rebuild them from the migrations",
        dir.display()
    );
    Some(crate::Error::ClusterVersion {
        dir,
        cluster_major,
        binaries_major,
        binaries: format!("{}, {}", cluster.binaries.source, cluster.binaries.bindir.display()),
        fix,
    })
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
