//! Throwaway and development PostgreSQL clusters: finding (or provisioning) server binaries, initdb, start, stop.
//!
//! Used for the embedded default (no database URL configured) and by the test harness, so both exercise the same
//! code. Clusters listen only on a Unix socket in their own directory: parallel runs never collide on a port and
//! nothing is exposed on the network.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The pinned, known-good PostgreSQL + pgvector build for these machines (a PyPI wheel that carries the
/// binaries). Other pgvector builds crash with SIGILL on CPUs without AVX-512, so the version is pinned.
pub const PGSERVER_WHEEL: &str = "pgserver==0.1.4";
const PROVISIONED_DIR_NAME: &str = "pgserver-0.1.4";

/// Where a set of server binaries came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinSource {
    EnvVar,
    PgConfigOnPath,
    SystemInstall,
    Provisioned,
}

impl std::fmt::Display for BinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BinSource::EnvVar => "ANONMIGRATE_PG_BINDIR",
            BinSource::PgConfigOnPath => "pg_config on PATH",
            BinSource::SystemInstall => "/usr/lib/postgresql",
            BinSource::Provisioned => "provisioned by anonmigrate",
        })
    }
}

#[derive(Debug, Clone)]
pub struct PgBinaries {
    pub bindir: PathBuf,
    pub source: BinSource,
}

impl PgBinaries {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// The directory holding `<name>.control` files for this installation.
    pub fn extension_dir(&self) -> Option<PathBuf> {
        let out = Command::new(self.tool("pg_config")).arg("--sharedir").output().ok()?;
        if !out.status.success() {
            return None;
        }
        let share = String::from_utf8(out.stdout).ok()?;
        Some(Path::new(share.trim()).join("extension"))
    }

    pub fn has_extension(&self, name: &str) -> bool {
        self.extension_dir()
            .is_some_and(|dir| dir.join(format!("{name}.control")).is_file())
    }
}

/// The cache for provisioned binaries. As root it must be readable by the unprivileged user the server runs as,
/// so it cannot live under a 0700 home directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ANONMIGRATE_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if is_root() {
        return PathBuf::from("/var/cache/anonmigrate");
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("anonmigrate");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/anonmigrate"),
        None => std::env::temp_dir().join("anonmigrate-cache"),
    }
}

fn provisioned_bindir() -> PathBuf {
    cache_dir().join(PROVISIONED_DIR_NAME).join("pgserver/pginstall/bin")
}

/// Candidate binary directories in the documented order: `ANONMIGRATE_PG_BINDIR`, `pg_config --bindir` on
/// PATH, the newest `/usr/lib/postgresql/*/bin`, then the provisioned copy (if already downloaded).
pub fn candidate_binaries() -> Vec<PgBinaries> {
    let mut found: Vec<PgBinaries> = Vec::new();
    let mut push = |bindir: PathBuf, source: BinSource| {
        if bindir.join("postgres").is_file() && !found.iter().any(|b| b.bindir == bindir) {
            found.push(PgBinaries { bindir, source });
        }
    };
    if let Some(dir) = std::env::var_os("ANONMIGRATE_PG_BINDIR") {
        push(PathBuf::from(dir), BinSource::EnvVar);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stderr(Stdio::null()).output()
        && out.status.success()
        && let Ok(text) = String::from_utf8(out.stdout)
    {
        push(PathBuf::from(text.trim()), BinSource::PgConfigOnPath);
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .collect();
        versions.sort_by(|a, b| b.0.cmp(&a.0));
        for (_, bindir) in versions {
            push(bindir, BinSource::SystemInstall);
        }
    }
    push(provisioned_bindir(), BinSource::Provisioned);
    found
}

/// Picks server binaries. An explicit `ANONMIGRATE_PG_BINDIR` always wins. Otherwise the first candidate that
/// has every required extension is taken; when none has them, the pinned PostgreSQL + pgvector build is
/// provisioned (if `provision_if_needed`).
pub fn find_binaries(required_extensions: &[String], provision_if_needed: bool) -> Result<PgBinaries> {
    let candidates = candidate_binaries();
    if let Some(explicit) = candidates.iter().find(|c| c.source == BinSource::EnvVar) {
        return Ok(explicit.clone());
    }
    if std::env::var_os("ANONMIGRATE_PG_BINDIR").is_some() {
        return Err(Error::ServerBinaries(format!(
            "ANONMIGRATE_PG_BINDIR={} holds no `postgres` binary; point it at a PostgreSQL bin directory or unset it",
            std::env::var("ANONMIGRATE_PG_BINDIR").unwrap_or_default()
        )));
    }
    if let Some(good) = candidates
        .iter()
        .find(|c| required_extensions.iter().all(|ext| c.has_extension(ext)))
    {
        return Ok(good.clone());
    }
    if provision_if_needed {
        return provision();
    }
    candidates.into_iter().next().ok_or_else(|| {
        Error::ServerBinaries(
            "no PostgreSQL server binaries found; run `cargo anonmigrate server install` (downloads the pinned PostgreSQL 16 + pgvector build) or set ANONMIGRATE_PG_BINDIR".into(),
        )
    })
}

/// Downloads and unpacks the pinned PostgreSQL + pgvector build into the cache, once. Idempotent and safe to run
/// concurrently: the unpacked tree is moved into place with one rename.
pub fn provision() -> Result<PgBinaries> {
    let bindir = provisioned_bindir();
    if bindir.join("postgres").is_file() {
        return Ok(PgBinaries {
            bindir,
            source: BinSource::Provisioned,
        });
    }
    let cache = cache_dir();
    let io = |what: &str, e: std::io::Error| Error::ServerBinaries(format!("{what}: {e}"));
    std::fs::create_dir_all(&cache).map_err(|e| io(&format!("cannot create cache `{}`", cache.display()), e))?;
    let staging = cache.join(format!(".staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| io("cannot create staging directory", e))?;

    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let download = Command::new(&python)
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", PGSERVER_WHEEL, "-d"])
        .arg(&staging)
        .output()
        .map_err(|e| io(&format!("cannot run `{python} -m pip` to fetch {PGSERVER_WHEEL} (install python3 and pip)"), e))?;
    if !download.status.success() {
        return Err(Error::ServerBinaries(format!(
            "`pip download {PGSERVER_WHEEL}` failed: {}; check access to the Python package index, or set ANONMIGRATE_PG_BINDIR to an existing PostgreSQL with pgvector",
            String::from_utf8_lossy(&download.stderr).trim()
        )));
    }
    let wheel = std::fs::read_dir(&staging)
        .map_err(|e| io("cannot list staging directory", e))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| Error::ServerBinaries("pip reported success but left no wheel".into()))?;
    let unpacked = staging.join("tree");
    // Python's zipfile drops Unix permissions; restoring them from external_attr keeps the binaries executable.
    let unzip_script = "import os,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nfor i in z.infolist():\n p=z.extract(i,sys.argv[2])\n m=(i.external_attr>>16)&0o777\n if m: os.chmod(p,m)\n";
    let unzip = Command::new(&python)
        .args(["-c", unzip_script])
        .arg(&wheel)
        .arg(&unpacked)
        .output()
        .map_err(|e| io("cannot unpack the wheel", e))?;
    if !unzip.status.success() {
        return Err(Error::ServerBinaries(format!(
            "unpacking {} failed: {}",
            wheel.display(),
            String::from_utf8_lossy(&unzip.stderr).trim()
        )));
    }
    let target = cache.join(PROVISIONED_DIR_NAME);
    if std::fs::rename(&unpacked, &target).is_err() && !bindir.join("postgres").is_file() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(Error::ServerBinaries(format!(
            "cannot move the unpacked server into `{}`; remove that directory and retry",
            target.display()
        )));
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(PgBinaries {
        bindir,
        source: BinSource::Provisioned,
    })
}

pub fn is_root() -> bool {
    // Reading the effective uid needs libc; /proc keeps this crate free of unsafe code.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The unprivileged OS user that runs the server when we are root (PostgreSQL refuses to run as root).
pub fn server_os_user() -> String {
    std::env::var("ANONMIGRATE_PG_USER").unwrap_or_else(|_| "postgres".into())
}

/// A cluster in one directory: `data/` for PGDATA, `sock/` for the Unix socket, `server.log`.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub root: PathBuf,
    pub binaries: PgBinaries,
    /// Database superuser created by initdb.
    pub superuser: String,
}

/// The longest socket directory that still fits `sun_path` (108 bytes) with `/.s.PGSQL.5432` appended.
const MAX_SOCKET_DIR_LEN: usize = 90;

impl Cluster {
    pub fn new(root: PathBuf, binaries: PgBinaries) -> Cluster {
        Cluster {
            root,
            binaries,
            superuser: "postgres".into(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        let preferred = self.root.join("sock");
        if preferred.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
            return preferred;
        }
        let hash = anonmigrate_chain::sha256_hex(self.root.as_os_str().as_encoded_bytes());
        std::env::temp_dir().join(format!("anonmigrate-sock-{}", &hash[..16]))
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// A libpq URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{}@localhost/{}?host={}",
            self.superuser,
            crate::database_url::encode_path_segment(database),
            crate::database_url::encode_query_value(&self.socket_dir().to_string_lossy()),
        )
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.binaries.tool(tool);
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", &server_os_user(), "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<()> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::LocalServer(format!("cannot run {what}: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        let mut message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if message.is_empty() {
            message = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        Err(Error::LocalServer(format!("{what} failed: {message}")))
    }

    fn prepare_dirs(&self) -> Result<()> {
        let dirs = [self.root.clone(), self.socket_dir()];
        for dir in &dirs {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::LocalServer(format!("cannot create `{}`: {e}", dir.display())))?;
        }
        if is_root() {
            let user = server_os_user();
            for dir in &dirs {
                let status = Command::new("chown")
                    .arg("-R")
                    .arg(format!("{user}:"))
                    .arg(dir)
                    .status()
                    .map_err(|e| Error::LocalServer(format!("cannot run chown: {e}")))?;
                if !status.success() {
                    return Err(Error::LocalServer(format!(
                        "cannot hand `{}` to the `{user}` user (PostgreSQL refuses to run as root); create that OS user or set ANONMIGRATE_PG_USER",
                        dir.display()
                    )));
                }
            }
            let reachable = Command::new("runuser")
                .args(["-u", &user, "--", "test", "-w"])
                .arg(&self.root)
                .status()
                .is_ok_and(|s| s.success());
            if !reachable {
                return Err(Error::LocalServerUnreachable {
                    dir: self.root.clone(),
                    user,
                });
            }
        }
        Ok(())
    }

    pub fn is_initialised(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// initdb with trust authentication on the local socket only; `fast` trades durability for speed and is
    /// only for throwaway clusters.
    pub fn init(&self, fast: bool) -> Result<()> {
        self.prepare_dirs()?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", &self.superuser, "--auth=trust", "--encoding=UTF8", "--locale=C"]);
        if fast {
            cmd.arg("--no-sync");
        }
        self.run(cmd, "initdb")
    }

    pub fn is_running(&self) -> bool {
        self.data_dir().join("postmaster.pid").is_file()
            && self.command("pg_ctl").arg("status").arg("-D").arg(self.data_dir()).output().is_ok_and(|o| o.status.success())
    }

    pub fn start(&self, fast: bool) -> Result<()> {
        self.prepare_dirs()?;
        let mut options = format!("-c listen_addresses='' -k {}", self.socket_dir().display());
        if fast {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", "60", "-o", &options]);
        self.run(cmd, "pg_ctl start").map_err(|e| {
            let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            Error::LocalServer(format!(
                "{e}; last lines of {}: {}",
                self.log_file().display(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ))
        })
    }

    /// Stops the server; `immediate` skips the checkpoint (fine for throwaway clusters).
    pub fn stop(&self, immediate: bool) -> Result<()> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", if immediate { "immediate" } else { "fast" }]);
        self.run(cmd, "pg_ctl stop")
    }

    /// Initialises (first use) and starts the cluster unless it is already running.
    pub fn ensure_running(&self, fast: bool) -> Result<bool> {
        if !self.is_initialised() {
            self.init(fast)?;
        }
        if self.is_running() {
            return Ok(false);
        }
        self.start(fast)?;
        Ok(true)
    }

    /// Waits until the server accepts connections (after a restart, for instance).
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let ready = Command::new(self.binaries.tool("pg_isready"))
                .arg("-h")
                .arg(self.socket_dir())
                .arg("-q")
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}
