//! Everything the CLI shows a person: progress lines from engine events, errors, JSON.

use std::io::Write;
use std::process::ExitCode;

use anonmigrate_core::events::{Event, Observer};

use crate::cli::Format;

/// Prints engine events: per-migration lines on stdout (text mode only, so JSON stays parseable), notices and
/// warnings on stderr. On a terminal, a live "migration n of N, elapsed" line on stderr shows what is running.
#[derive(Debug)]
pub struct Printer {
    pub format: Format,
    started: std::time::Instant,
    live: bool,
}

impl Printer {
    pub fn new(format: Format) -> Printer {
        use std::io::IsTerminal;
        Printer {
            format,
            started: std::time::Instant::now(),
            live: std::io::stderr().is_terminal() && std::env::var_os("TERM").is_some_and(|t| t != "dumb"),
        }
    }

    /// Rewrites the live progress line (terminal only); plain output gets the per-migration lines instead.
    fn progress(&self, verb: &str, index: usize, total: usize, dir_name: &str) {
        if self.live {
            let elapsed = self.started.elapsed().as_secs_f64();
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{verb} {dir_name} (migration {index} of {total}, {elapsed:.1}s elapsed)");
        }
    }

    fn clear_progress(&self) {
        if self.live {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, event: Event) {
        let text = self.format == Format::Text;
        match event {
            Event::UsingLocalServer { description, started } => {
                let verb = if started { "started" } else { "using" };
                note(&format!("{verb} the managed local server: {description}"));
            }
            Event::WaitingForLock { holder } => note(&format!(
                "waiting for the migration lock held by {holder} (another runner is migrating this database)"
            )),
            Event::Applying { index, total, dir_name } => self.progress("applying ", index, total, &dir_name),
            Event::Reverting { index, total, dir_name } => self.progress("reverting", index, total, &dir_name),
            Event::Applied { .. } | Event::Reverted { .. } if !text => self.clear_progress(),
            Event::Applied { index, total, dir_name, duration, statements } => {
                self.clear_progress();
                out(&format!(
                    "applied   {dir_name}  ({index}/{total}, {statements} statement{}, {} ms)",
                    if statements == 1 { "" } else { "s" },
                    duration.as_millis()
                ));
            }
            Event::Reverted { index, total, dir_name, duration } => {
                self.clear_progress();
                out(&format!("reverted  {dir_name}  ({index}/{total}, {} ms)", duration.as_millis()));
            }
            Event::Resuming { dir_name, from_statement, total } => note(&format!(
                "resuming {dir_name} at statement {from_statement} of {total} (the earlier statements ran before)"
            )),
            Event::Created { what } => note(&format!("created {what}")),
            Event::Notice(message) => note(&message),
            Event::Warning(message) => note(&format!("warning: {message}")),
        }
    }
}

/// A line on stdout; a closed pipe (`| head`) is not an error worth reporting.
pub fn out(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    out(&text);
    Ok(())
}

/// Prints the error chain once (`error: context: cause`) and maps it to an exit code.
pub fn report_error(error: &anyhow::Error) -> ExitCode {
    let mut message = String::new();
    for (i, cause) in error.chain().enumerate() {
        if i > 0 {
            message.push_str(": ");
        }
        message.push_str(&cause.to_string());
        // Engine errors already include their cause in their message.
        if cause.downcast_ref::<anonmigrate_core::Error>().is_some()
            || cause.downcast_ref::<anonmigrate_core::chain::ChainError>().is_some()
        {
            break;
        }
    }
    note(&format!("error: {}", anonmigrate_core::database_url::redact_text(&message)));
    crate::exit::for_error(error)
}
