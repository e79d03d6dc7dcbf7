//! Fails `cargo build` when src/schema.rs no longer matches ../migrations (the anonmigrate drift gate: reads
//! files and migrations/anonmigrate.lock only, no database). Fix: `cargo anonmigrate schema`.

fn main() {
    anonmigrate_chain::drift::Gate::new("../migrations", "src/schema.rs").run();
}
