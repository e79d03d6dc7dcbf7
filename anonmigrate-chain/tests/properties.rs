//! Property tests for the chain parser: `parse_dir_name` on any text, and `Chain::load` on generated migration
//! directories (good, badly named, hidden, loose files, missing/empty/non-UTF-8 files, clashing versions). Neither
//! may panic; a valid name round-trips; `load` succeeds exactly when every migration directory is valid.

use std::collections::BTreeMap;
use std::path::Path;

use anonmigrate_chain::{Chain, ChainError, normalise_line_endings, parse_dir_name, sha256_hex};
use proptest::prelude::*;

/// A `<version>` as people write it: digits with `-` anywhere (diesel drops them), at least one digit.
fn raw_version() -> impl Strategy<Value = String> {
    "[0-9-]{0,8}[0-9][0-9-]{0,12}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_dir_name_never_panics_and_only_accepts_the_documented_shape(name in prop_oneof![
        any::<String>(),
        "[0-9_ a-z.-]{0,24}",
    ]) {
        // diesel's derivation: the text before the first `_` (all of it without one), dashes removed, is the version.
        let (raw, rest) = name.split_once('_').unwrap_or((name.as_str(), ""));
        match parse_dir_name(&name) {
            Some((version, parsed_rest)) => {
                prop_assert!(!version.is_empty());
                prop_assert_eq!(raw.replace('-', ""), version);
                prop_assert_eq!(parsed_rest, rest);
            }
            None => prop_assert!(raw.replace('-', "").is_empty(), "{name:?} has a version but was rejected"),
        }
    }

    #[test]
    fn valid_names_round_trip(raw in raw_version(), rest in any::<String>().prop_filter("non-empty", |s| !s.is_empty())) {
        let dir_name = format!("{raw}_{rest}");
        let (version, name) = parse_dir_name(&dir_name).expect("a valid name parses");
        prop_assert_eq!(&version, &raw.replace('-', ""));
        prop_assert_eq!(&name, &rest);
        // The parts put back together give a name that parses to the same version and name.
        prop_assert_eq!(parse_dir_name(&format!("{version}_{name}")), Some((version, name)));
    }
}

/// What one entry of a generated migrations directory holds.
#[derive(Debug, Clone)]
enum Entry {
    Migration { up: Option<Vec<u8>>, down: Option<Vec<u8>>, metadata: Option<Vec<u8>> },
    LooseFile(Vec<u8>),
}

fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        16 => "[a-z ;\r\n]{1,40}".prop_filter("has text", |s| !s.trim().is_empty()).prop_map(String::into_bytes),
        1 => Just(Vec::new()),
        1 => Just(b" \r\n\t".to_vec()),
        1 => Just(b"select '\xff';".to_vec()),
    ]
}

fn entry_name() -> impl Strategy<Value = String> {
    prop_oneof![
        // Small versions clash often, to exercise the duplicate check.
        16 => ("[0-9]{1,2}(-[0-9])?", "[a-z_ ]{1,8}").prop_map(|(v, n)| format!("{v}_{n}")),
        1 => "[a-z0-9-]{1,10}",
        1 => "\\.[a-z_0-9]{1,8}",
        1 => "[0-9]{1,3}_",
    ]
    .prop_filter("a usable file name", |n| n != "." && n != "..")
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        5 => (
            prop::option::weighted(0.95, contents()),
            prop::option::of(contents()),
            prop::option::weighted(0.2, contents()),
        )
            .prop_map(|(up, down, metadata)| Entry::Migration { up, down, metadata }),
        1 => contents().prop_map(Entry::LooseFile),
    ]
}

/// The error kinds `Chain::load` may report for this tree, or `None` when it must succeed.
fn expected_problems(tree: &BTreeMap<String, Entry>) -> Option<Vec<&'static str>> {
    let mut problems = Vec::new();
    let mut versions = Vec::new();
    for (name, entry) in tree {
        let Entry::Migration { up, down, metadata } = entry else { continue };
        if name.starts_with('.') {
            continue;
        }
        let Some((version, _)) = parse_dir_name(name) else {
            problems.push("bad name");
            continue;
        };
        versions.push(version);
        let utf8 = |bytes: &Option<Vec<u8>>| bytes.as_ref().is_none_or(|b| std::str::from_utf8(b).is_ok());
        match up {
            None => problems.push("missing up.sql"),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Err(_) => problems.push("not utf-8"),
                Ok(text) if text.trim().is_empty() => problems.push("empty up.sql"),
                Ok(_) => {}
            },
        }
        if !utf8(down) || !utf8(metadata) {
            problems.push("not utf-8");
        }
    }
    if problems.is_empty() {
        versions.sort();
        if versions.windows(2).any(|w| w[0] == w[1]) {
            problems.push("duplicate version");
        }
    }
    (!problems.is_empty()).then_some(problems)
}

fn kind(error: &ChainError) -> &'static str {
    match error {
        ChainError::BadName(_) => "bad name",
        ChainError::ControlCharacter { .. } => "control character",
        ChainError::MissingUpSql(_) => "missing up.sql",
        ChainError::NotUtf8 { .. } => "not utf-8",
        ChainError::EmptyUpSql(_) => "empty up.sql",
        ChainError::DuplicateVersion { .. } => "duplicate version",
        other => panic!("unexpected error for a generated tree: {other}"),
    }
}

fn write_tree(root: &Path, tree: &BTreeMap<String, Entry>) {
    for (name, entry) in tree {
        let path = root.join(name);
        match entry {
            Entry::LooseFile(bytes) => std::fs::write(&path, bytes).unwrap(),
            Entry::Migration { up, down, metadata } => {
                std::fs::create_dir(&path).unwrap();
                for (file, bytes) in [("up.sql", up), ("down.sql", down), ("metadata.toml", metadata)] {
                    if let Some(bytes) = bytes {
                        std::fs::write(path.join(file), bytes).unwrap();
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn load_never_panics_and_accepts_exactly_the_valid_trees(tree in prop::collection::btree_map(entry_name(), entry(), 0..7)) {
        let tmp = tempfile::tempdir().unwrap();
        write_tree(tmp.path(), &tree);
        let loaded = Chain::load(tmp.path());
        match (expected_problems(&tree), loaded) {
            (None, Ok(chain)) => {
                let dirs: Vec<(&String, &Entry)> = tree
                    .iter()
                    .filter(|(name, entry)| !name.starts_with('.') && matches!(entry, Entry::Migration { .. }))
                    .collect();
                prop_assert_eq!(chain.migrations.len(), dirs.len());
                prop_assert!(chain.migrations.windows(2).all(|w| w[0].version < w[1].version), "ordered by version");
                for migration in &chain.migrations {
                    let Some(Entry::Migration { up, down, .. }) = tree.get(&migration.dir_name) else {
                        return Err(TestCaseError::fail(format!("{} is not a generated migration", migration.dir_name)));
                    };
                    let up = String::from_utf8(up.clone().unwrap()).unwrap();
                    prop_assert_eq!(&migration.checksum, &sha256_hex(normalise_line_endings(&up).as_bytes()));
                    prop_assert_eq!(&migration.up_sql, &up);
                    prop_assert_eq!(migration.down_sql.clone(), down.clone().map(|d| String::from_utf8(d).unwrap()));
                    prop_assert_eq!(Some((migration.version.clone(), migration.name.clone())), parse_dir_name(&migration.dir_name));
                }
            }
            (Some(problems), Err(error)) => {
                prop_assert!(problems.contains(&kind(&error)), "got `{}`, expected one of {:?}", error, problems);
            }
            (None, Err(error)) => return Err(TestCaseError::fail(format!("a valid tree was refused: {error}"))),
            (Some(problems), Ok(_)) => return Err(TestCaseError::fail(format!("accepted a tree with {problems:?}"))),
        }
    }
}
