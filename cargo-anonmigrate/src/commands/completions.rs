//! `completions <shell>`: shell completion scripts generated from the clap definition, wrapped so that they
//! complete `cargo anonmigrate ...` and leave every other `cargo ...` to cargo's own completion.
//!
//! clap generates a completion for the command `cargo` (our outer `cargo` enum), named like cargo's own
//! (`_cargo`) and registered for `cargo`: sourcing it as is replaces cargo's completion. So the generated
//! functions are renamed (`_anonmigrate_cargo...`), and a small dispatcher registered for `cargo` calls them for
//! `cargo anonmigrate ...` and the completion that was registered before (cargo's) for anything else.

use std::io::Write as _;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{CargoCli, Shell};

pub fn completions(shell: Shell) -> anyhow::Result<ExitCode> {
    let mut command = CargoCli::command();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Into memory first: clap_complete panics when its writer fails (a closed pipe: `completions bash | head`).
    let mut generated = Vec::new();
    clap_complete::generate(generator, &mut command, "cargo", &mut generated);
    let generated = String::from_utf8(generated)?;
    let script = match shell {
        Shell::Bash => bash(&generated),
        Shell::Zsh => zsh(&generated),
        Shell::Fish => fish(&generated),
    };
    // A reader that stops early (`| head`) is not an error.
    let _ = std::io::stdout().lock().write_all(script.as_bytes());
    Ok(ExitCode::SUCCESS)
}

const BASH_DISPATCH: &str = r#"
# `cargo anonmigrate ...` is completed above; every other `cargo ...` goes to the completion that was registered for
# cargo before this script was sourced (cargo's own; bash-completion loads it on demand, so it is loaded here first).
if [[ -z "$(complete -p cargo 2>/dev/null)" ]]; then
    if declare -F __load_completion >/dev/null; then
        __load_completion cargo
    elif declare -F _completion_loader >/dev/null; then
        _completion_loader cargo
    fi
fi
__anonmigrate_cargo_registered="$(complete -p cargo 2>/dev/null)"
if [[ "$__anonmigrate_cargo_registered" =~ -F\ ([^ ]+) && "${BASH_REMATCH[1]}" != _anonmigrate_cargo_dispatch ]]; then
    __anonmigrate_cargo_previous="${BASH_REMATCH[1]}"
fi
unset __anonmigrate_cargo_registered

_anonmigrate_cargo_dispatch() {
    if [[ "${COMP_WORDS[1]}" == anonmigrate ]]; then
        _anonmigrate_cargo "$@"
    elif [[ -n "${__anonmigrate_cargo_previous-}" ]]; then
        "$__anonmigrate_cargo_previous" "$@"
    fi
}

complete -F _anonmigrate_cargo_dispatch -o bashdefault -o default cargo
"#;

/// Renames clap's `_cargo` and replaces its `complete ... cargo` registration with the dispatcher.
fn bash(generated: &str) -> String {
    let registration = generated
        .find("\nif [[ \"${BASH_VERSINFO[0]}\" -eq 4")
        .unwrap_or(generated.len());
    let body = generated[..registration].replacen("_cargo() {", "_anonmigrate_cargo() {", 1);
    format!("{}\n{BASH_DISPATCH}", body.trim_end())
}

const ZSH_DISPATCH: &str = r#"
# `cargo anonmigrate ...` is completed above; every other `cargo ...` goes to the completion that was registered for
# cargo before this script was sourced (cargo's own `_cargo`). Source this after compinit.
if [[ -n "${_comps[cargo]-}" && "${_comps[cargo]}" != _anonmigrate_cargo_dispatch ]]; then
    __anonmigrate_cargo_previous="${_comps[cargo]}"
fi

_anonmigrate_cargo_dispatch() {
    if [[ "${words[2]}" == anonmigrate ]]; then
        _anonmigrate_cargo "$@"
    elif [[ -n "${__anonmigrate_cargo_previous-}" ]]; then
        "$__anonmigrate_cargo_previous" "$@"
    fi
}

compdef _anonmigrate_cargo_dispatch cargo
"#;

/// Renames every clap function (`_cargo`, `_cargo_commands`, `_cargo__subcmd__...`) so none shadows cargo's own
/// (the generated helpers are only defined when no function of that name exists), and replaces the
/// registration with the dispatcher.
fn zsh(generated: &str) -> String {
    let registration = generated.find("\nif [ \"$funcstack[1]\" = \"_cargo\" ]").unwrap_or(generated.len());
    let body = generated[..registration]
        .replacen("#compdef cargo\n", "", 1)
        .replace("_cargo", "_anonmigrate_cargo");
    format!("# zsh completion for `cargo anonmigrate`: source it after compinit.\n{}\n{ZSH_DISPATCH}", body.trim_end())
}

/// fish adds completions rather than replacing them, so only clap's helper functions are renamed (fish's own
/// cargo completion has functions named `__fish_cargo_*`), and the outer command's `help` subcommand and `-h`
/// are dropped: cargo's own completion offers those for `cargo`.
fn fish(generated: &str) -> String {
    let body = generated.replace("__fish_cargo_", "__fish_anonmigrate_cargo_");
    let own_line = |line: &&str| {
        let outer = line.starts_with("complete -c cargo -n \"__fish_anonmigrate_cargo_needs_command\"");
        let outer_help = line.contains("__fish_anonmigrate_cargo_using_subcommand help");
        (!outer || line.contains("-a \"anonmigrate\"")) && !outer_help
    };
    // A `complete` whose value list spans lines continues on lines that start with none of these.
    let starts_record = |line: &str| ["complete ", "function ", "end", "    ", "#"].iter().any(|p| line.starts_with(p)) || line.is_empty();
    let mut records: Vec<String> = Vec::new();
    for line in body.lines() {
        match records.last_mut() {
            Some(record) if !starts_record(line) => {
                record.push('\n');
                record.push_str(line);
            }
            _ => records.push(line.to_owned()),
        }
    }
    let mut script = String::from("# fish completion for `cargo anonmigrate`; cargo's own completion is left as it is.\n");
    for record in records.iter().filter(|r| own_line(&r.as_str())) {
        script.push_str(record);
        script.push('\n');
    }
    script
}
