//! Finds the Cargo workspace a command works in (its root, target directory and `[workspace.metadata]`) the way
//! cargo does, without running cargo: spawning `cargo metadata` (through rustup) cost as much as the whole
//! `status` of a small chain. The manifests are read directly; cargo's configuration (config files up the tree
//! and in `CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_BUILD_TARGET_DIR`) is resolved by `cargo-config2`. Only a
//! configuration that crate cannot load sends us to `cargo metadata`, which then answers or names the problem.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Where the workspace is, as `cargo metadata` would say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// `[workspace.metadata]` of the root manifest as JSON; `Null` without one.
    pub metadata: serde_json::Value,
}

/// The environment discovery reads (cargo's variables); a parameter so tests can vary it without touching the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct Environment(Vec<(OsString, OsString)>);

impl Environment {
    pub fn current() -> Environment {
        Environment(std::env::vars_os().collect())
    }

    pub fn from_pairs<K: Into<OsString>, V: Into<OsString>>(pairs: impl IntoIterator<Item = (K, V)>) -> Environment {
        Environment(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    fn get(&self, key: &str) -> Option<&OsString> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !v.is_empty())
    }

    /// `CARGO_HOME`, else `~/.cargo`, as cargo computes it (a relative `CARGO_HOME` is relative to `cwd`).
    fn cargo_home(&self, cwd: &Path) -> Option<PathBuf> {
        match self.get("CARGO_HOME") {
            Some(home) => Some(cwd.join(home)),
            None => self.get("HOME").map(|home| PathBuf::from(home).join(".cargo")),
        }
    }
}

/// The workspace `cwd` (or `--manifest-path`) belongs to; `None` outside any Cargo project.
pub fn locate(cwd: &Path, manifest_path: Option<&Path>, env: &Environment) -> Result<Option<Located>> {
    let start = match manifest_path {
        Some(path) => {
            let path = normalize(&cwd.join(path));
            if path.file_name().is_none_or(|name| name != "Cargo.toml") {
                return Err(Error::Config(format!(
                    "--manifest-path `{}` is not a Cargo.toml file; pass the path of the workspace's (or a member's) Cargo.toml",
                    path.display()
                )));
            }
            if !path.is_file() {
                return Err(Error::Config(format!(
                    "--manifest-path `{}` does not exist; pass the path of an existing Cargo.toml",
                    path.display()
                )));
            }
            path
        }
        None => match cwd.ancestors().map(|dir| dir.join("Cargo.toml")).find(|manifest| manifest.is_file()) {
            Some(manifest) => manifest,
            None => return Ok(None),
        },
    };
    let cargo_home = env.cargo_home(cwd);
    let root_manifest = workspace_root(&start, cargo_home.as_deref())?;
    let root = root_manifest.parent().expect("a manifest path has a directory").to_path_buf();
    let metadata = read_manifest(&root_manifest)?
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| serde_json::to_value(m).ok())
        .unwrap_or(serde_json::Value::Null);
    let target_dir = match configured_target_dir(cwd, env, cargo_home) {
        // Not normalized: cargo reports `member/../dir` as it is.
        Ok(Some(dir)) => dir,
        Ok(None) => root.join("target"),
        Err(_) => return via_cargo_metadata(cwd, manifest_path).map(Some),
    };
    Ok(Some(Located { root, target_dir, metadata }))
}

/// `build.target-dir` as cargo resolves it: `CARGO_TARGET_DIR`, `CARGO_BUILD_TARGET_DIR`, then the config files
/// from `cwd` up and in `CARGO_HOME` (cargo reads them from the current directory, also with
/// `--manifest-path`). A relative path in a file is relative to the directory holding its `.cargo`.
fn configured_target_dir(cwd: &Path, env: &Environment, cargo_home: Option<PathBuf>) -> std::result::Result<Option<PathBuf>, String> {
    let options = cargo_config2::ResolveOptions::default().env(env.0.iter().cloned()).cargo_home(cargo_home);
    let config = cargo_config2::Config::load_with_options(cwd, options).map_err(|e| e.to_string())?;
    Ok(config.build.target_dir)
}

/// The root manifest of the workspace `manifest` belongs to, by cargo's rules: itself when it has
/// `[workspace]`; the directory `package.workspace` names; else the nearest ancestor with `[workspace]` that does
/// not exclude it (not looking above `CARGO_HOME` or out of a `target/package` directory); else itself.
fn workspace_root(manifest: &Path, cargo_home: Option<&Path>) -> Result<PathBuf> {
    let table = read_manifest(manifest)?;
    if table.contains_key("workspace") {
        return Ok(manifest.to_path_buf());
    }
    let dir = manifest.parent().expect("a manifest path has a directory");
    if let Some(root) = declared_root(&table, dir) {
        return Ok(root);
    }
    let mut previous: Option<&Path> = None;
    for ancestor in dir.ancestors().skip(1) {
        if ancestor.ends_with("target/package") || (previous.is_some() && previous == cargo_home) {
            break;
        }
        previous = Some(ancestor);
        let candidate = ancestor.join("Cargo.toml");
        if !candidate.is_file() {
            continue;
        }
        let ancestor_table = read_manifest(&candidate)?;
        if let Some(workspace) = ancestor_table.get("workspace") {
            if !excludes(workspace, ancestor, manifest) {
                return Ok(candidate);
            }
        } else if let Some(root) = declared_root(&ancestor_table, ancestor) {
            return Ok(root);
        }
    }
    Ok(manifest.to_path_buf())
}

/// `package.workspace = "../path"`: the root manifest it points at.
fn declared_root(table: &toml::Table, dir: &Path) -> Option<PathBuf> {
    let path = table.get("package")?.get("workspace")?.as_str()?;
    Some(normalize(&dir.join(path).join("Cargo.toml")))
}

/// cargo's `is_excluded`: under an `exclude` entry and not under a `members` entry (globs are not expanded, as in
/// cargo's own check).
fn excludes(workspace: &toml::Value, root: &Path, manifest: &Path) -> bool {
    let under = |key: &str| {
        workspace
            .get(key)
            .and_then(|v| v.as_array())
            .is_some_and(|paths| paths.iter().filter_map(|p| p.as_str()).any(|p| manifest.starts_with(normalize(&root.join(p)))))
    };
    under("exclude") && !under("members")
}

fn read_manifest(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read `{}`: {e}; check that it exists and is readable", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("cannot parse `{}`: {e}; fix the TOML syntax", path.display())))
}

/// Removes `.` and `..` lexically, like cargo's `normalize_path` (symbolic links are left alone, as cargo does).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The slow path, for a cargo configuration `cargo-config2` cannot load: cargo itself answers (or explains).
fn via_cargo_metadata(cwd: &Path, manifest_path: Option<&Path>) -> Result<Located> {
    let mut cmd = cargo_metadata::MetadataCommand::new();
    cmd.no_deps().current_dir(cwd).other_options(vec!["--offline".to_owned()]);
    if let Some(path) = manifest_path {
        cmd.manifest_path(path);
    }
    let metadata = cmd.exec().map_err(|e| {
        Error::Config(format!(
            "cannot read the Cargo workspace ({}); fix Cargo.toml or the cargo configuration it names, or pass --manifest-path",
            e.to_string().lines().next().unwrap_or_default()
        ))
    })?;
    Ok(Located {
        root: metadata.workspace_root.into_std_path_buf(),
        target_dir: metadata.target_directory.into_std_path_buf(),
        metadata: metadata.workspace_metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch tree with a `CARGO_HOME` of its own inside it, so neither cargo nor we see the machine's.
    struct Tree {
        _tmp: tempfile::TempDir,
        root: PathBuf,
    }

    impl Tree {
        fn new() -> Tree {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().canonicalize().unwrap();
            std::fs::create_dir_all(root.join("cargo-home")).unwrap();
            Tree { _tmp: tmp, root }
        }

        fn write(&self, rel: &str, text: &str) {
            let path = self.root.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }

        fn package(&self, dir: &str, extra: &str) {
            let name = dir.rsplit('/').next().unwrap().replace('-', "_");
            self.write(
                &format!("{dir}/Cargo.toml"),
                &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{extra}"),
            );
            self.write(&format!("{dir}/src/lib.rs"), "");
        }

        /// What cargo says, run from `cwd` with exactly `vars` of cargo's variables set.
        fn cargo(&self, cwd: &str, manifest: Option<&str>, vars: &[(&str, &str)]) -> Located {
            let mut cmd = std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cmd.args(["metadata", "--no-deps", "--offline", "--format-version", "1"]).current_dir(self.root.join(cwd));
            if let Some(manifest) = manifest {
                cmd.arg("--manifest-path").arg(manifest);
            }
            for var in ["CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "CARGO_HOME"] {
                cmd.env_remove(var);
            }
            // cargo (through rustup) needs its toolchain: keep RUSTUP_HOME pointing at the real one.
            if std::env::var_os("RUSTUP_HOME").is_none()
                && let Some(home) = std::env::var_os("HOME")
            {
                cmd.env("RUSTUP_HOME", PathBuf::from(home).join(".rustup"));
            }
            cmd.env("CARGO_HOME", self.root.join("cargo-home"));
            for (k, v) in vars {
                cmd.env(k, v);
            }
            let out = cmd.output().expect("cargo runs");
            assert!(out.status.success(), "cargo metadata failed in {cwd}: {}", String::from_utf8_lossy(&out.stderr));
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            Located {
                root: PathBuf::from(json["workspace_root"].as_str().unwrap()),
                target_dir: PathBuf::from(json["target_directory"].as_str().unwrap()),
                metadata: json["metadata"].clone(),
            }
        }

        fn ours(&self, cwd: &str, manifest: Option<&str>, vars: &[(&str, &str)]) -> Located {
            let mut pairs = vec![("CARGO_HOME".to_owned(), self.root.join("cargo-home").into_os_string())];
            pairs.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), OsString::from(v))));
            locate(&self.root.join(cwd), manifest.map(Path::new), &Environment::from_pairs(pairs))
                .unwrap()
                .expect("inside a Cargo project")
        }

        #[track_caller]
        fn agree(&self, case: &str, cwd: &str, manifest: Option<&str>, vars: &[(&str, &str)]) {
            let ours = self.ours(cwd, manifest, vars);
            assert_eq!(ours, self.cargo(cwd, manifest, vars), "{case}: from {cwd}, --manifest-path {manifest:?}, {vars:?}");
        }
    }

    /// Discovery agrees with `cargo metadata` on every layout it answers by itself.
    #[test]
    fn agrees_with_cargo_metadata_across_layouts() {
        let t = Tree::new();
        // A virtual manifest with metadata, a member, an excluded package inside it, and a member elsewhere that
        // points back with `package.workspace`.
        t.write(
            "ws/Cargo.toml",
            "[workspace]\nmembers = [\"app\", \"../outside/member\"]\nexclude = [\"tools\"]\nresolver = \"2\"\n\n\
             [workspace.metadata.anonmigrate]\ndev-database = \"x\"\nextensions = [\"vector\"]\n",
        );
        t.package("ws/app", "");
        t.package("ws/tools/gen", "");
        t.package("outside/member", "workspace = \"../../ws\"\n");
        // A package that is its own workspace root, with a nested package dir that is not a manifest.
        t.package("single", "\n[workspace]\n\n[package.metadata.anonmigrate]\ndev-database = \"y\"\n");
        std::fs::create_dir_all(t.root.join("single/src/deep")).unwrap();

        t.agree("virtual manifest, from a member's source", "ws/app/src", None, &[]);
        t.agree("virtual manifest, from the root", "ws", None, &[]);
        t.agree("excluded package", "ws/tools/gen", None, &[]);
        t.agree("package.workspace", "outside/member/src", None, &[]);
        t.agree("package with [workspace], deep inside", "single/src/deep", None, &[]);
        t.agree("--manifest-path of a member, from elsewhere", "single", Some("../ws/app/Cargo.toml"), &[]);
        t.agree("--manifest-path of the root", "outside", Some("../ws/Cargo.toml"), &[]);

        // Environment overrides: CARGO_TARGET_DIR wins over CARGO_BUILD_TARGET_DIR; relative to the directory.
        t.agree("CARGO_TARGET_DIR", "ws/app", None, &[("CARGO_TARGET_DIR", "rel-target")]);
        t.agree("CARGO_BUILD_TARGET_DIR", "ws/app", None, &[("CARGO_BUILD_TARGET_DIR", "/tmp/abs-target")]);
        t.agree("both", "ws/app", None, &[("CARGO_TARGET_DIR", "a"), ("CARGO_BUILD_TARGET_DIR", "b")]);

        // Config files at several levels: CARGO_HOME, the workspace root, a member (nearest wins); relative to the
        // directory that holds `.cargo`; the old extension-less name.
        t.write("cargo-home/config.toml", "[build]\ntarget-dir = \"home-target\"\n");
        t.agree("config in CARGO_HOME", "ws/app", None, &[]);
        t.write("ws/.cargo/config.toml", "[build]\ntarget-dir = \"ws-target\"\n\n[env]\nIGNORED = \"1\"\n");
        t.agree("config at the root", "ws/app/src", None, &[]);
        t.write("ws/app/.cargo/config", "[build]\ntarget-dir = \"../app-target\"\n");
        t.agree("config in the member (old name)", "ws/app/src", None, &[]);
        t.agree("config from the directory, not the manifest", "single", Some("../ws/app/Cargo.toml"), &[]);
        t.agree("environment over config files", "ws/app", None, &[("CARGO_BUILD_TARGET_DIR", "env-target")]);
        t.write("single/.cargo/config.toml", "[alias]\nb = \"build\"\n");
        t.agree("a config without target-dir", "single/src", None, &[]);
    }

    #[test]
    fn outside_any_project_and_bad_manifest_paths() {
        let t = Tree::new();
        std::fs::create_dir_all(t.root.join("bare/migrations")).unwrap();
        let env = Environment::from_pairs([("CARGO_HOME", t.root.join("cargo-home"))]);
        // The scratch directory lives under the system temporary directory, which has no Cargo.toml above it.
        assert_eq!(locate(&t.root.join("bare"), None, &env).unwrap(), None);
        let missing = locate(&t.root, Some(Path::new("nope/Cargo.toml")), &env).unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        let dir = locate(&t.root, Some(Path::new("bare")), &env).unwrap_err().to_string();
        assert!(dir.contains("is not a Cargo.toml file"), "{dir}");
        t.write("broken/Cargo.toml", "[package\n");
        let broken = locate(&t.root.join("broken"), None, &env).unwrap_err().to_string();
        assert!(broken.contains("fix the TOML syntax"), "{broken}");
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(normalize(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
    }
}
