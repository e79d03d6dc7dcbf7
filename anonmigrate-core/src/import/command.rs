//! Running a user's tool (`alembic`, `pg_dump`) with an explicit argv, no shell: errors name the command and carry
//! the end of its stderr, with any database URL's password redacted.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::database_url::redact_text;
use crate::error::{Error, Result};

/// How a command line is shown in messages: the argv joined with spaces, passwords redacted.
pub(crate) fn shown(argv: &[String]) -> String {
    redact_text(&argv.join(" "))
}

/// The last lines of a command's stderr (a Python traceback ends with the line that matters).
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(8)..];
    redact_text(&tail.join("\n    "))
}

/// Runs `argv` in `cwd` and returns its stdout; a missing program or a non-zero exit is an error that names the
/// command, shows the end of its stderr and ends with `fix`.
pub(crate) fn run(argv: &[String], cwd: &Path, env: &[(&str, &str)], fix: &str) -> Result<String> {
    let (program, args) = argv.split_first().expect("a command has a program");
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(cwd).stdin(Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let output = cmd.output().map_err(|e| {
        Error::Config(format!(
            "cannot run `{}` (in {}): {e}; {fix}",
            shown(argv),
            cwd.display()
        ))
    })?;
    if !output.status.success() {
        let status = output.status.code().map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit status {c}"));
        return Err(Error::Config(format!(
            "`{}` (in {}) failed ({status}):\n    {}\n{fix}",
            shown(argv),
            cwd.display(),
            stderr_tail(&output.stderr)
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| Error::Config(format!("`{}` printed text that is not UTF-8; {fix}", shown(argv))))
}

/// A user-given command: a path to an existing program is taken whole (it may hold spaces), anything else is
/// split at whitespace (`python -m alembic`). There is no shell, so no quoting rules to get wrong.
pub(crate) fn split_command(command: &str) -> Vec<String> {
    if Path::new(command).is_file() {
        return vec![command.to_owned()];
    }
    command.split_whitespace().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_command_is_named_with_its_stderr_and_no_password() {
        let argv: Vec<String> = ["sh", "-c", "echo 'connect to postgres://app:s3cret@db/x failed' >&2; exit 3", "postgres://app:s3cret@db/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let err = run(&argv, Path::new("."), &[], "fix it").unwrap_err().to_string();
        assert!(err.contains("failed (exit status 3)"), "{err}");
        assert!(err.contains("connect to postgres://app:***@db/x failed"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.ends_with("fix it"), "{err}");
        let missing = run(&["no-such-program-anonmigrate".to_owned()], Path::new("."), &[], "install it").unwrap_err().to_string();
        assert!(missing.starts_with("cannot run `no-such-program-anonmigrate`"), "{missing}");
    }

    #[test]
    fn commands_split_at_spaces_unless_they_name_a_file() {
        assert_eq!(split_command("python3 -m alembic"), ["python3", "-m", "alembic"]);
        assert_eq!(split_command("/bin/sh"), ["/bin/sh"]);
    }
}
