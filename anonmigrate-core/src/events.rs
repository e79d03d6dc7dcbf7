//! Progress events the engine reports while it works; the CLI decides how (and whether) to show them, since the
//! library never prints.

use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Event {
    /// No URL configured: the managed local server is used.
    UsingLocalServer { description: String, started: bool },
    /// Another runner holds the migration lock; we poll until it is released.
    WaitingForLock { holder: String },
    Applying { index: usize, total: usize, dir_name: String },
    Applied { index: usize, total: usize, dir_name: String, duration: Duration, statements: usize },
    /// A non-transactional migration resumes after a previous partial run.
    Resuming { dir_name: String, from_statement: usize, total: usize },
    Reverting { index: usize, total: usize, dir_name: String },
    Reverted { index: usize, total: usize, dir_name: String, duration: Duration },
    Created { what: String },
    Notice(String),
    Warning(String),
}

pub trait Observer {
    fn event(&mut self, event: Event);
}

/// An observer that drops everything (tests and library callers that only want the result).
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _event: Event) {}
}

impl<F: FnMut(Event)> Observer for F {
    fn event(&mut self, event: Event) {
        self(event)
    }
}
