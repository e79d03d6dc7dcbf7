//! `--help` of every command, pinned so a change to the CLI surface is reviewed like code.

use crate::support::Env;

#[test]
fn help_output_is_pinned() {
    let env = Env::new("help");
    let commands: &[&[&str]] = &[
        &[],
        &["setup"],
        &["run"],
        &["revert"],
        &["redo"],
        &["status"],
        &["history"],
        &["generate"],
        &["schema"],
        &["lock"],
        &["accept"],
        &["stamp"],
        &["import"],
        &["import", "alembic"],
        &["baseline"],
        &["heads"],
        &["merge"],
        &["database"],
        &["database", "reset"],
        &["database", "drop"],
        &["server"],
        &["doctor"],
        &["lint"],
        &["check"],
        &["completions"],
        &["fleet"],
        &["fleet", "status"],
        &["fleet", "run"],
        &["fleet", "check"],
        &["cache"],
        &["cache", "clear"],
    ];
    for command in commands {
        let mut args: Vec<&str> = command.to_vec();
        args.push("--help");
        let outcome = env.raw(&args, &[]);
        outcome.assert_code(0);
        let name = if command.is_empty() { "main".to_owned() } else { command.join("_") };
        insta::assert_snapshot!(format!("help_{name}"), outcome.stdout);
    }
}

#[test]
fn completion_scripts_cover_the_commands() {
    let env = Env::new("completions");
    for shell in ["bash", "zsh", "fish"] {
        let outcome = env.raw(&["completions", shell], &[]);
        outcome.assert_code(0);
        for word in ["anonmigrate", "revert", "database-url"] {
            assert!(outcome.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    env.raw(&["completions", "powershell"], &[]).assert_code(2);
}
