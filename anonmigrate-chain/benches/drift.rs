//! Timing of the build-script drift gate (`drift::Gate::check`) on a large chain. No database, no network.
//!
//! Modes:
//! - `cargo bench -p anonmigrate-chain --bench drift [-- --migrations N --iterations K]`: generates a chain of N
//!   migrations (default 1,000) and a schema file, records the schema in the lock file, then times K checks
//!   (default 50) of the clean chain and K checks after one migration was edited; prints median and min–max.
//! - `drift --prepare <migrations dir> <schema file>`: writes the lock file of that chain with a record of the
//!   schema file, as `cargo anonmigrate schema` would (used by `benches/run`).
//! - `drift --check <migrations dir> <schema file>`: one check, prints its time; exit 0 when clean, 1 on drift
//!   (used by `benches/run`, which measures the whole process too).
//! - no arguments (what `cargo test` does with this target): a quick self-check on a 20-migration chain, so
//!   the benchmark cannot rot.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anonmigrate_chain::drift::{Gate, relative_path};
use anonmigrate_chain::{Chain, LockFile};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--prepare") => path_args(&args).and_then(|(m, s)| prepare(&m, &s)),
        Some("--check") => path_args(&args).and_then(|(m, s)| check_once(&m, &s)),
        _ if args.iter().any(|a| a == "--bench") => bench(&args),
        _ => self_check(),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("drift bench: {message}");
            ExitCode::from(2)
        }
    }
}

fn path_args(args: &[String]) -> Result<(PathBuf, PathBuf), String> {
    match args {
        [_, migrations, schema] => Ok((PathBuf::from(migrations), PathBuf::from(schema))),
        _ => Err(format!("usage: drift {} <migrations dir> <schema file>", args[0])),
    }
}

/// Records `schema` in the lock file of `migrations`, keyed the way the gate looks it up.
fn prepare(migrations: &Path, schema: &Path) -> Result<ExitCode, String> {
    let chain = Chain::load(migrations).map_err(|e| e.to_string())?;
    let previous = LockFile::read(migrations).map_err(|e| e.to_string())?.map(|(lock, _)| lock);
    let mut lock = LockFile::updated_for(&chain, previous.as_ref());
    let content = std::fs::read_to_string(schema).map_err(|e| format!("cannot read {}: {e}", schema.display()))?;
    lock.record_schema(relative_path(migrations, schema), &content);
    lock.write(migrations).map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn check_once(migrations: &Path, schema: &Path) -> Result<ExitCode, String> {
    let gate = Gate::new(migrations, schema);
    let started = Instant::now();
    let report = gate.check().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    println!("drift gate: {} migrations checked in {:.3} ms", count_migrations(migrations), ms(elapsed));
    if report.is_clean() {
        return Ok(ExitCode::SUCCESS);
    }
    for line in report.lines() {
        println!("{line}");
    }
    Ok(ExitCode::from(1))
}

fn count_migrations(migrations: &Path) -> usize {
    Chain::migration_dir_names(migrations).map_or(0, |names| names.len())
}

/// A scratch chain of `n` migrations with a schema file recorded in its lock file.
struct Fixture {
    _dir: tempfile::TempDir,
    migrations: PathBuf,
    schema: PathBuf,
}

impl Fixture {
    fn new(n: usize) -> Result<Fixture, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let migrations = dir.path().join("migrations");
        let schema = dir.path().join("app/src/schema.rs");
        let io = |e: std::io::Error| e.to_string();
        let mut schema_text = String::from("// @generated automatically by Diesel CLI.\n");
        for i in 1..=n {
            let migration = migrations.join(format!("2024-01-01-{i:06}_m{i:04}"));
            std::fs::create_dir_all(&migration).map_err(io)?;
            let (up, down) = synthetic_sql(i);
            std::fs::write(migration.join("up.sql"), up).map_err(io)?;
            std::fs::write(migration.join("down.sql"), down).map_err(io)?;
            if !i.is_multiple_of(4) {
                schema_text.push_str(&format!(
                    "\ndiesel::table! {{\n    t{i:04} (id) {{\n        id -> Int8,\n        name -> Text,\n        score -> Nullable<Int4>,\n    }}\n}}\n"
                ));
            }
        }
        std::fs::create_dir_all(schema.parent().expect("the schema file has a parent")).map_err(io)?;
        std::fs::write(&schema, schema_text).map_err(io)?;
        prepare(&migrations, &schema)?;
        Ok(Fixture {
            _dir: dir,
            migrations,
            schema,
        })
    }

    fn gate(&self) -> Gate {
        Gate::new(&self.migrations, &self.schema)
    }

    /// Changes one migration in the middle of the chain, as a hand edit after generation would.
    fn edit_one(&self, n: usize) -> Result<String, String> {
        let i = n.div_ceil(2);
        let name = format!("2024-01-01-{i:06}_m{i:04}");
        let path = self.migrations.join(&name).join("up.sql");
        let mut text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        text.push_str("-- edited\n");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        Ok(name)
    }
}

/// Three of four migrations create a table, the fourth alters the one before it.
fn synthetic_sql(i: usize) -> (String, String) {
    if i.is_multiple_of(4) {
        let t = i - 1;
        (
            format!("ALTER TABLE t{t:04} ADD COLUMN note_{i:04} text;\n"),
            format!("ALTER TABLE t{t:04} DROP COLUMN note_{i:04};\n"),
        )
    } else {
        (
            format!("CREATE TABLE t{i:04} (id bigint PRIMARY KEY, name text NOT NULL, score integer);\n"),
            format!("DROP TABLE t{i:04};\n"),
        )
    }
}

fn self_check() -> Result<ExitCode, String> {
    let n = 20;
    let fixture = Fixture::new(n)?;
    let clean = fixture.gate().check().map_err(|e| e.to_string())?;
    if !clean.is_clean() {
        return Err(format!("a freshly prepared chain reports drift: {:?}", clean.findings));
    }
    let edited = fixture.edit_one(n)?;
    let dirty = fixture.gate().check().map_err(|e| e.to_string())?;
    if !dirty.lines().iter().any(|l| l.contains(&edited)) {
        return Err(format!("the gate did not name the edited migration {edited}: {:?}", dirty.findings));
    }
    println!("drift bench self-check: ok ({n} migrations; `cargo bench -p anonmigrate-chain --bench drift` times it)");
    Ok(ExitCode::SUCCESS)
}

fn flag_value(args: &[String], flag: &str, default: usize) -> Result<usize, String> {
    match args.iter().position(|a| a == flag) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number")),
    }
}

fn bench(args: &[String]) -> Result<ExitCode, String> {
    let n = flag_value(args, "--migrations", 1000)?;
    let iterations = flag_value(args, "--iterations", 50)?.max(1);
    let fixture = Fixture::new(n)?;
    let clean = time_checks(&fixture.gate(), iterations, true)?;
    println!("drift gate, {n} migrations, clean:            {}", summary(&clean));
    fixture.edit_one(n)?;
    let dirty = time_checks(&fixture.gate(), iterations, false)?;
    println!("drift gate, {n} migrations, one edited:       {}", summary(&dirty));
    if let Some(peak) = peak_rss_kib() {
        println!("peak RSS of this process: {:.1} MiB", peak as f64 / 1024.0);
    }
    Ok(ExitCode::SUCCESS)
}

fn time_checks(gate: &Gate, iterations: usize, expect_clean: bool) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let report = gate.check().map_err(|e| e.to_string())?;
        times.push(started.elapsed());
        if report.is_clean() != expect_clean {
            return Err(format!("expected clean = {expect_clean}, got findings {:?}", report.findings));
        }
    }
    times.sort();
    Ok(times)
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "median {:.3} ms, min {:.3} ms, max {:.3} ms ({} runs)",
        ms(sorted[sorted.len() / 2]),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len()
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `VmHWM` from /proc/self/status (Linux only).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
