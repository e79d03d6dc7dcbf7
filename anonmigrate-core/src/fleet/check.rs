//! `fleet check`: which targets' schemas differ from what the chain gives at their version, named with the
//! differences (the `check --database` comparison per target, one replay of the chain for all of them).

use anonmigrate_chain::Chain;
use serde::Serialize;

use super::Target;
use crate::check::{Outcome, Section};
use crate::config::Workspace;
use crate::error::Result;
use crate::events::Observer;

/// One target's comparison: the JSON record of `fleet check --format json`.
#[derive(Debug, Serialize)]
pub struct TargetCheck {
    pub name: String,
    pub target: String,
    /// `None` when the target could not be read (`error` says why).
    pub section: Option<Section>,
    pub error: Option<String>,
}

impl TargetCheck {
    pub fn passed(&self) -> bool {
        self.section.as_ref().is_some_and(|s| s.outcome != Outcome::Fail)
    }
}

pub fn check(workspace: &Workspace, chain: &Chain, targets: &[Target], jobs: usize, observer: &mut dyn Observer) -> Result<Vec<TargetCheck>> {
    let urls: Vec<_> = targets.iter().map(|t| t.url.clone()).collect();
    let sections = crate::check::check_targets(workspace, chain, &urls, jobs, observer)?;
    Ok(targets
        .iter()
        .zip(sections)
        .map(|(target, section)| {
            let (section, error) = match section {
                Ok(section) => (Some(section), None),
                Err(error) => (None, Some(crate::database_url::redact_text(&error.to_string()))),
            };
            TargetCheck { name: target.name.clone(), target: target.url.describe(), section, error }
        })
        .collect())
}
