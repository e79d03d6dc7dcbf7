//! `cache list|clear`: the template databases replays copy and the spare copies test databases claim
//! (`anonmigrate_core::template`).

use std::process::ExitCode;

use anonmigrate_core::{target, template};

use super::Context;
use crate::cli::{CacheCommand, Format};
use crate::output::{json, out};

pub fn cache(ctx: &mut Context, command: &CacheCommand) -> anyhow::Result<ExitCode> {
    let chain = ctx.chain().ok();
    let server = target::server(&ctx.workspace, chain.as_ref(), &mut ctx.printer)?;
    let cache = anonmigrate_core::schema::template_cache(&ctx.workspace, &server)?;
    match command {
        CacheCommand::List { all } => {
            let templates = if *all { template::list_all(&server)? } else { cache.list(true)? };
            match ctx.format {
                Format::Json => json(&serde_json::json!({
                    "server": server.describe(),
                    "templates": templates.iter().map(|t| serde_json::json!({
                        "name": t.name, "migrations": t.migrations, "size_bytes": t.size_bytes, "spares": t.spares, "comment": t.comment,
                    })).collect::<Vec<_>>(),
                }))?,
                Format::Text if templates.is_empty() => out(&format!("no template databases on {}", server.describe())),
                Format::Text => {
                    for t in &templates {
                        let size = t.size_bytes.map_or_else(|| "?".to_owned(), |b| format!("{:.1} MB", b as f64 / 1_048_576.0));
                        let spares = match t.spares {
                            Some(n) if n > 0 => format!("  {n} spare(s)"),
                            _ => String::new(),
                        };
                        out(&format!("{}  {} migration(s)  {size}{spares}  {}", t.name, t.migrations, t.comment));
                    }
                }
            }
        }
        CacheCommand::Clear { all } => {
            let dropped = if *all { template::clear_all(&server)? } else { cache.clear()? };
            match ctx.format {
                Format::Json => json(&serde_json::json!({ "server": server.describe(), "dropped": dropped }))?,
                Format::Text if dropped.is_empty() => out(&format!("no template databases to drop on {}", server.describe())),
                Format::Text => {
                    let spares = dropped.iter().filter(|d| d.starts_with(template::SPARE_PREFIX)).count();
                    let also = if spares > 0 { format!(" and {spares} spare test database(s)") } else { String::new() };
                    out(&format!(
                        "dropped {} template database(s){also} on {}: {}",
                        dropped.len() - spares,
                        server.describe(),
                        dropped.join(", ")
                    ));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
