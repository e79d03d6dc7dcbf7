//! Keeps README.md honest: every `cargo anonmigrate …` command it shows must run as written with the real binary,
//! and the CI recipe must work as written against a real database.

use anonmigrate_testkit::{TestDb, repo_root};

use crate::support::Env;

/// Commands from inline code spans and from `sh` blocks, with comments and redirections removed.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            if line.trim_start().starts_with("cargo anonmigrate") {
                commands.push(line.trim().to_owned());
            }
            continue;
        }
        for (index, span) in line.split('`').enumerate() {
            if index % 2 == 1 && span.starts_with("cargo anonmigrate") {
                commands.push(span.to_owned());
            }
        }
    }
    commands
        .into_iter()
        .map(|c| {
            let cut = c.find(['#', '>', '&', '|']).unwrap_or(c.len());
            c[..cut].trim().to_owned()
        })
        .collect()
}

/// Commands shown with placeholders or that manage the machine rather than a database (the managed server has
/// its own tests in server.rs), the Alembic ones, which need an Alembic project and its venv (alembic.rs runs
/// them as written on the fixture project), and the fleet ones, which need tenant databases or a targets file
/// (fleet.rs runs them on real tenants): checked to parse, with `--help`.
fn parse_only(words: &[&str]) -> bool {
    words.is_empty()
        || words[0] == "server"
        || words[0] == "fleet"
        || words.iter().any(|w| w.starts_with('['))
        || words[0] == "import"
        || words.contains(&"--from-alembic")
}

/// Every README command runs for real, in a workspace of its own holding the Anonymous Chat chain, against a
/// database of its own with the chain applied; placeholders get real values (VERSION: a migration's version,
/// NAME: a name). Each must succeed: a command the README shows that fails as written is a README bug.
#[test]
fn every_readme_command_runs_as_written() {
    let mut commands = readme_commands();
    commands.sort();
    commands.dedup();
    assert!(commands.len() > 30, "found only {} commands in README.md", commands.len());
    let (mut ran, mut failed) = (0, Vec::new());
    for command in &commands {
        let words: Vec<&str> = command
            .split_whitespace()
            .skip(2)
            .map(|w| match w {
                "VERSION" => "20250115090300",
                "NAME" => "x",
                other => other,
            })
            .collect();
        let env = Env::anonchat("readme");
        // The repository's own schema configuration, which the README's commands assume.
        env.ws.write("diesel.toml", std::fs::read(repo_root().join("diesel.toml")).unwrap());
        if parse_only(&words) {
            let mut args = words.clone();
            args.push("--help");
            let outcome = env.raw(&args, &[]);
            assert_eq!(outcome.code, 0, "README command `{command}` is rejected:\n{}", outcome.stderr);
            continue;
        }
        env.cli(&["run"]).assert_code(0);
        let outcome = env.raw(&words, &[("DATABASE_URL", env.db.url.as_str())]);
        if outcome.code != 0 {
            failed.push(format!("`{command}` exits {}:\n{}{}", outcome.code, outcome.stdout, outcome.stderr));
        }
        ran += 1;
    }
    assert!(failed.is_empty(), "README commands that fail as written:\n{}", failed.join("\n"));
    assert!(ran > 30, "only {ran} README commands ran for real");
}

#[test]
fn the_ci_recipe_works_as_written() {
    let env = Env::anonchat("readme_ci");
    let target = TestDb::not_created("readme_ci_target");
    let with_url = [("DATABASE_URL", target.url.as_str())];
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let recipe = readme.split("## CI recipe").nth(1).expect("README has a CI recipe");
    let block = recipe.split("```").nth(1).expect("the recipe has a code block");
    let mut ran = 0;
    for line in block.lines().filter(|l| l.starts_with("cargo anonmigrate")) {
        let command = line.split('#').next().unwrap().trim();
        let args: Vec<&str> = command.split_whitespace().skip(2).collect();
        env.raw(&args, &with_url).assert_code(0);
        ran += 1;
    }
    assert!(ran >= 3, "the CI recipe should set up, run and check");
    assert_eq!(target.applied_versions().len(), 5);
}
