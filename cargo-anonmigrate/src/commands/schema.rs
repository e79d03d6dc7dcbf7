//! `schema`: regenerate schema.rs from the migration chain (replayed into a scratch database), and the same
//! step at the end of `run`.

use std::process::ExitCode;
use std::sync::Once;

use anonmigrate_core::chain::Chain;
use anonmigrate_core::events::{Event, Observer};
use anonmigrate_core::schema::{self, Generated, config::SchemaConfig};
use anyhow::Context as _;

use super::Context;
use crate::cli::{Format, SchemaArgs};
use crate::output::{json, note, out};

/// Set to `1` to print where the time went, like `--timings` (for benchmarks of `run`).
const TIMINGS_VARIABLE: &str = "ANONMIGRATE_TIMINGS";

pub fn schema(ctx: &mut Context, args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    let config = SchemaConfig::load(&ctx.workspace)?;
    if args.from_database {
        let url = ctx.database(None)?;
        let generated = schema::from_database(&url, &config, &mut ctx.printer)
            .with_context(|| format!("failed to read the schema of {}", url.describe()))?;
        report_timings(&generated, args.timings);
        print(&generated);
        return Ok(ExitCode::SUCCESS);
    }
    let chain = ctx.synced_chain()?;
    let generated = generate(ctx, &chain, &config, args.timings)?;
    if args.stdout || config.files().next().is_none() {
        if !args.stdout {
            note(
                "no schema file is configured, so it is printed: set `file` under [print_schema] in diesel.toml, or `schema-file` under [workspace.metadata.anonmigrate] in Cargo.toml",
            );
        }
        print(&generated);
        return Ok(ExitCode::SUCCESS);
    }
    let written = schema::write(&generated.files, &chain, args.force)?;
    match ctx.format {
        Format::Json => json(&serde_json::json!({
            "files": written.iter().map(|w| serde_json::json!({ "path": w.path, "changed": w.changed })).collect::<Vec<_>>(),
        }))?,
        Format::Text => {
            for file in &written {
                let shown = file.path.strip_prefix(&ctx.workspace.root).unwrap_or(&file.path).display();
                out(&if file.changed { format!("wrote {shown}") } else { format!("unchanged {shown}") });
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn generate(ctx: &mut Context, chain: &Chain, config: &SchemaConfig, timings: bool) -> anyhow::Result<Generated> {
    drop_scratch_databases_on_interrupt();
    let generated = schema::generate(&ctx.workspace, chain, config, &mut ctx.printer)
        .context("failed to generate the schema from the migrations")?;
    report_timings(&generated, timings);
    Ok(generated)
}

fn report_timings(generated: &Generated, asked: bool) {
    if asked || std::env::var(TIMINGS_VARIABLE).is_ok_and(|v| v == "1") {
        let t = generated.timings;
        note(&format!(
            "timings: replay {} ms ({} of {} migration(s) from a template copy{}), catalog read {} ms, render {} ms ({} tables)",
            t.replay.as_millis(),
            t.copied,
            t.migrations,
            if t.spare { " made in advance" } else { "" },
            t.catalog.as_millis(),
            t.render.as_millis(),
            generated.catalog.tables.len()
        ));
    }
}

/// Every section, as diesel print-schema prints them.
fn print(generated: &Generated) {
    let printed = generated.printed();
    out(printed.strip_suffix('\n').unwrap_or(&printed));
}

/// After `run` applied migrations: regenerate the configured schema file(s), as diesel does. Nothing happens
/// when no file is configured; a failure here is a warning, since the migrations did apply. A schema.rs with hand
/// edits the migrations do not explain is left alone (with a warning saying how to keep or discard them).
pub fn regenerate_after_run(ctx: &mut Context, chain: &Chain) {
    keep_no_templates_on_a_configured_server(ctx);
    let result = SchemaConfig::load(&ctx.workspace).map_err(anyhow::Error::from).and_then(|config| {
        if config.files().next().is_none() {
            return Ok(Vec::new());
        }
        let generated = generate(ctx, chain, &config, false)?;
        Ok(schema::write(&generated.files, chain, false)?)
    });
    match result {
        Ok(written) => {
            for file in written.iter().filter(|f| f.changed) {
                let shown = file.path.strip_prefix(&ctx.workspace.root).unwrap_or(&file.path).display().to_string();
                ctx.printer.event(Event::Notice(format!("regenerated {shown}")));
            }
        }
        Err(error) if matches!(error.downcast_ref(), Some(anonmigrate_core::Error::HandEdited { .. })) => {
            ctx.printer.event(Event::Warning(format!("the migrations were applied; {error:#}")))
        }
        Err(error) => ctx.printer.event(Event::Warning(format!(
            "the migrations were applied, but schema.rs was not regenerated: {error:#}; run `cargo anonmigrate schema` (or pass --no-schema)"
        ))),
    }
}

/// `--locked-schema` (diesel's flag): before anything is applied, every configured schema file must already be
/// what the migrations give; nothing rewrites it afterwards. Without a configured file there is nothing to lock.
pub fn refuse_stale_schema(ctx: &mut Context, chain: &Chain) -> anyhow::Result<()> {
    keep_no_templates_on_a_configured_server(ctx);
    let config = SchemaConfig::load(&ctx.workspace)?;
    if config.files().next().is_none() {
        return Ok(());
    }
    let generated = generate(ctx, chain, &config, false)?;
    for file in &generated.files {
        let Some(path) = &file.path else { continue };
        let on_disk = std::fs::read_to_string(path).unwrap_or_default().replace("\r\n", "\n");
        if on_disk != file.content.replace("\r\n", "\n") {
            let shown = path.strip_prefix(&ctx.workspace.root).unwrap_or(path).display().to_string();
            return Err(anonmigrate_core::Error::Integrity(format!(
                "--locked-schema: `{shown}` is not what the migrations give; nothing was changed; run `cargo anonmigrate schema` and commit the file, or drop --locked-schema"
            ))
            .into());
        }
    }
    Ok(())
}

/// Ctrl-C while the chain is replayed: drop the scratch database before exiting, so none is left behind.
pub(super) fn drop_scratch_databases_on_interrupt() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            schema::scratch::drop_all_active_then(|dropped| {
                for name in dropped {
                    note(&format!("interrupted: dropped the scratch database {name}"));
                }
                std::process::exit(130);
            });
        });
    });
}

/// `run` is how migrations reach production: its schema.rs replay on a configured server must leave nothing there
/// (the scratch database is dropped, no template is kept). The managed local server keeps its templates, so the
/// daily `generate`, edit, `run` loop stays fast.
fn keep_no_templates_on_a_configured_server(ctx: &Context) {
    if matches!(ctx.workspace.configured_url(), Ok(Some(_))) {
        anonmigrate_core::template::turn_off_for_this_process();
    }
}
