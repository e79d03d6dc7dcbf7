//! `cargo anonmigrate lint --fix`: applies squawk's mechanical fixes to the up.sql and down.sql files of migrations that no database has applied
//! yet (newer than the lint baseline). An applied migration is never edited: its checksum is recorded, and the
//! runner would refuse the changed file.

use std::path::PathBuf;

use anonmigrate_chain::Chain;

use crate::{Config, Error, Fix, Report, Result};

/// One up.sql or down.sql the fixes changed.
#[derive(Debug, Clone)]
pub struct FixedFile {
    pub path: PathBuf,
    /// The titles of the fixes applied, in file order.
    pub applied: Vec<String>,
}

/// Applies every fix of `report` to migrations newer than the baseline; returns what changed. Findings without a fix
/// are left for the author.
pub fn apply(chain: &Chain, config: &Config, report: &Report) -> Result<Vec<FixedFile>> {
    let mut out = Vec::new();
    for migration in &chain.migrations {
        if config.covered_by_baseline(&migration.version) {
            continue;
        }
        let files = [(migration.up_path(), Some(migration.up_sql.as_str())), (migration.down_path(), migration.down_sql.as_deref())];
        for (path, text) in files {
            let Some(text) = text else { continue };
            let fixes: Vec<&Fix> = report
                .findings
                .iter()
                .filter(|f| f.migration == migration.dir_name && f.path == path)
                .filter_map(|f| f.fix.as_ref())
                .collect();
            if fixes.is_empty() {
                continue;
            }
            let (text, applied) = apply_to_text(text, &fixes);
            if applied.is_empty() {
                continue;
            }
            write_replacing(&path, &text)?;
            out.push(FixedFile { path, applied });
        }
    }
    Ok(out)
}

/// The text with the fixes' edits made, last first so earlier offsets stay valid; a fix whose edits overlap one
/// already taken is skipped (the next `lint --fix` run sees it again).
pub fn apply_to_text(text: &str, fixes: &[&Fix]) -> (String, Vec<String>) {
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut edits = Vec::new();
    let mut applied = Vec::new();
    for fix in fixes {
        let overlaps = fix.edits.iter().any(|e| taken.iter().any(|&(s, end)| e.start < end.max(s + 1) && s < e.end.max(e.start + 1)));
        let in_bounds = fix.edits.iter().all(|e| e.start <= e.end && e.end <= text.len() && text.is_char_boundary(e.start) && text.is_char_boundary(e.end));
        if overlaps || !in_bounds {
            continue;
        }
        taken.extend(fix.edits.iter().map(|e| (e.start, e.end)));
        edits.extend(fix.edits.iter());
        applied.push(fix.title.clone());
    }
    edits.sort_by_key(|e| std::cmp::Reverse((e.start, e.end)));
    let mut out = text.to_owned();
    for edit in edits {
        out.replace_range(edit.start..edit.end, &edit.text);
    }
    (out, applied)
}

/// Writes through a unique temporary file in the same directory and a rename, so a crash never leaves half a file.
fn write_replacing(path: &std::path::Path, text: &str) -> Result<()> {
    anonmigrate_chain::write_atomically(path, text)
        .map_err(|e| Error::Config(format!("cannot write `{}`: {e}; check the directory's permissions", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Edit;

    #[test]
    fn edits_are_applied_from_the_end_and_overlaps_are_skipped() {
        let text = "CREATE INDEX a ON t (x);\nCREATE INDEX b ON t (y);\n";
        let fix = |at: usize, title: &str| Fix { title: title.into(), edits: vec![Edit { start: at, end: at, text: " CONCURRENTLY".into() }] };
        let (first, second, again) = (fix(12, "one"), fix(37, "two"), fix(12, "dup"));
        let (out, applied) = apply_to_text(text, &[&first, &second, &again]);
        assert_eq!(out, "CREATE INDEX CONCURRENTLY a ON t (x);\nCREATE INDEX CONCURRENTLY b ON t (y);\n");
        assert_eq!(applied, ["one", "two"]);
    }
}
