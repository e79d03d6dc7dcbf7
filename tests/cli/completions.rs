//! `completions bash|zsh|fish`: sourced in a real shell where cargo's own completion is already loaded, the
//! script completes `cargo anonmigrate ...` and leaves every other `cargo ...` to cargo's completion; and a closed
//! pipe (`completions bash | head`) ends the command quietly instead of panicking.

use std::io::Read as _;
use std::process::{Command, Stdio};

use crate::support::bin;

/// Runs `script` in `shell` with no user configuration; fails (never skips) when the shell is not installed.
fn shell(shell: &str, args: &[&str], script: &str, home: &std::path::Path) -> String {
    let output = Command::new(shell)
        .args(args)
        .arg(script)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("ANONMIGRATE_BIN", bin())
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shell} ({e}); the completion tests need bash, zsh and fish installed (apt-get install zsh fish)"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{shell} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

#[test]
fn bash_completes_cargo_anonmigrate_and_keeps_cargos_own_completion() {
    let home = tempfile::tempdir().unwrap();
    let out = shell(
        "bash",
        &["--norc", "--noprofile", "-c"],
        r#"
_cargo() { COMPREPLY=(cargo-own-completion); }   # stands in for cargo's completion, loaded first
complete -F _cargo cargo
source <("$ANONMIGRATE_BIN" completions bash)
fn=$(complete -p cargo | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMP_WORDS=(cargo b); COMP_CWORD=1; COMP_LINE="cargo b"; COMP_POINT=7; COMPREPLY=()
"$fn" cargo b cargo; echo "cargo b: ${COMPREPLY[*]}"
COMP_WORDS=(cargo anonmigrate re); COMP_CWORD=2; COMP_LINE="cargo anonmigrate re"; COMP_POINT=20; COMPREPLY=()
"$fn" cargo re anonmigrate; echo "cargo anonmigrate re: ${COMPREPLY[*]}"
COMP_WORDS=(cargo anonmigrate run --t); COMP_CWORD=3; COMP_LINE="cargo anonmigrate run --t"; COMP_POINT=25; COMPREPLY=()
"$fn" cargo --t run; echo "cargo anonmigrate run --t: ${COMPREPLY[*]}"
source <("$ANONMIGRATE_BIN" completions bash)   # sourcing twice still hands the rest to cargo
COMP_WORDS=(cargo b); COMP_CWORD=1; COMPREPLY=(); "$fn" cargo b cargo; echo "again: ${COMPREPLY[*]}"
type -t _cargo
"#,
        home.path(),
    );
    assert_eq!(
        out,
        "cargo b: cargo-own-completion\ncargo anonmigrate re: revert redo\ncargo anonmigrate run --t: --to\nagain: cargo-own-completion\nfunction\n"
    );
}

#[test]
fn zsh_completes_cargo_anonmigrate_and_keeps_cargos_own_completion() {
    let home = tempfile::tempdir().unwrap();
    let out = shell(
        "zsh",
        &["-f", "-c"],
        r#"
autoload -U compinit && compinit -u -D
_cargo() { print "cargo-own-completion" }   # stands in for cargo's completion, registered first
compdef _cargo cargo
source <("$ANONMIGRATE_BIN" completions zsh)
print "registered: $_comps[cargo]"
words=(cargo b); _anonmigrate_cargo_dispatch
print "_cargo is still: $(functions _cargo | sed -n 2p | tr -d '\t')"
(( $+functions[_anonmigrate_cargo] )) && print "anonmigrate completion defined"
_anonmigrate_cargo() { print "anonmigrate completion for $words[3]" }   # observe the dispatch
words=(cargo anonmigrate re); _anonmigrate_cargo_dispatch
"#,
        home.path(),
    );
    assert_eq!(
        out,
        "registered: _anonmigrate_cargo_dispatch\ncargo-own-completion\n_cargo is still: print \"cargo-own-completion\"\nanonmigrate completion defined\nanonmigrate completion for re\n"
    );
}

#[test]
fn fish_completes_cargo_anonmigrate_and_keeps_cargos_own_completion() {
    let home = tempfile::tempdir().unwrap();
    let out = shell(
        "fish",
        &["-c"],
        r#"
complete -c cargo -f -n __fish_use_subcommand -a "stubbuild"   # a completion for cargo defined before ours
"$ANONMIGRATE_BIN" completions fish | source
complete -C "cargo stubb"
complete -C "cargo bui"   # fish's own cargo completion (autoloaded, runs `cargo --list`)
complete -C "cargo anonmigrate re"
complete -C "cargo anonmigrate run --t"
"#,
        home.path(),
    );
    let lines: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(lines[..4], ["stubbuild", "build", "redo", "revert"], "{out}");
    assert!(lines[4..].contains(&"--to"), "{out}");
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    for shell in ["bash", "zsh", "fish"] {
        // The script is larger than a pipe's buffer, so the write meets the closed pipe.
        let mut child = Command::new(bin())
            .args(["completions", shell])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{shell}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{shell}: {stderr}");
    }
    // Any command's output: `history | head -c 1` on a real chain.
    let env = crate::support::Env::anonchat("closed_pipe");
    let mut child = Command::new(bin())
        .args(["history", "--database-url", &env.db.url])
        .current_dir(env.ws.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"), "{}", String::from_utf8_lossy(&output.stderr));
}
