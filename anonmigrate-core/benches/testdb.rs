//! Fresh migrated test databases (`anonmigrate_core::testdb::TestDatabase`, a copy of the chain's template) against
//! what tests did before: a new database with the whole chain replayed by the runner. Prints the median and range
//! of each, per chain. Used by benches/templates.sh; run alone as
//! `cargo bench -p anonmigrate-core --bench testdb -- SERVER_URL MIGRATIONS_DIR [REPS]`.
// A benchmark reports its figures on the terminal: printing is its job here (the library never prints).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anonmigrate_core::database_url::{DatabaseUrl, UrlSource};
use anonmigrate_core::runner::{self, RunOptions};
use anonmigrate_core::schema::scratch::ScratchDatabase;
use anonmigrate_core::testdb::TestDatabase;

fn median(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(times[times.len() / 2]), ms(times[0]), ms(times[times.len() - 1]))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.len() < 2 {
        eprintln!("usage: testdb SERVER_URL MIGRATIONS_DIR [REPS]");
        std::process::exit(2);
    }
    let (server, migrations) = (&args[0], PathBuf::from(&args[1]));
    let reps: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(11);
    let chain = anonmigrate_core::chain::Chain::load(&migrations).expect("the chain loads");

    // The first one builds the template (not counted: a test run pays it once).
    let started = Instant::now();
    drop(TestDatabase::on_server(server, &migrations).expect("a test database"));
    let first = started.elapsed();
    let mut copies = Vec::new();
    for _ in 0..reps {
        let started = Instant::now();
        let db = TestDatabase::on_server(server, &migrations).expect("a test database");
        copies.push(started.elapsed());
        assert_eq!(db.replay().copied, chain.migrations.len(), "every test database must be a template copy");
    }

    let url = DatabaseUrl::parse(server, UrlSource::Flag).expect("the URL parses");
    let options = RunOptions {
        lock_timeout: Duration::from_secs(60),
        ..RunOptions::default()
    };
    let mut replays = Vec::new();
    for _ in 0..reps.min(5) {
        let started = Instant::now();
        let db = ScratchDatabase::create(&url).expect("a scratch database");
        runner::run(&db.url, &chain, &options, &mut anonmigrate_core::events::Silent).expect("the chain applies");
        replays.push(started.elapsed());
    }
    let (cm, cmin, cmax) = median(copies);
    let (rm, rmin, rmax) = median(replays.clone());
    println!(
        "{} migrations: test database from the template {cm:.1} ms ({cmin:.1}-{cmax:.1}, {reps} runs; first one, building the template: {:.0} ms); replaying the chain {rm:.1} ms ({rmin:.1}-{rmax:.1}, {} runs)",
        chain.migrations.len(),
        first.as_secs_f64() * 1000.0,
        replays.len()
    );
}
