//! Fresh migrated test databases (`anonmigrate_core::testdb::TestDatabase`) per chain: claimed from a warm pool of
//! spare copies, back to back while the pool drains, against one template copy made on demand (what a test paid
//! before the spares) and a new database with the whole chain replayed by the runner (before templates). Prints the
//! median and range of each. Used by benches/templates.sh; run alone as
//! `cargo bench -p anonmigrate-core --bench testdb -- SERVER_URL MIGRATIONS_DIR [REPS]`.
// A benchmark reports its figures on the terminal: printing is its job here (the library never prints).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anonmigrate_core::database_url::{DatabaseUrl, UrlSource};
use anonmigrate_core::runner::{self, RunOptions};
use anonmigrate_core::schema::scratch::ScratchDatabase;
use anonmigrate_core::testdb::{self, TestDatabase};

fn median(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    (ms(times[times.len() / 2]), ms(times[0]), ms(times[times.len() - 1]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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
    let n = chain.migrations.len();
    let spares = testdb::spares_wanted();
    // TESTDB_BENCH_TRACE=1: each back-to-back creation on stderr (which ones missed a spare, and what that cost).
    let trace = std::env::var_os("TESTDB_BENCH_TRACE").is_some();

    // The first one builds the template (not counted: a test run pays it once) and starts making spares.
    let started = Instant::now();
    let first = TestDatabase::on_server(server, &migrations).expect("a test database");
    let built = started.elapsed();
    drop(first);

    // (a) A warm pool: every claim finds the spares made (as a test suite sees it when tests are a little apart).
    let mut warm = Vec::new();
    let mut head = None;
    for _ in 0..reps {
        testdb::wait_for_spares();
        let started = Instant::now();
        let db = TestDatabase::on_server(server, &migrations).expect("a test database");
        warm.push(started.elapsed());
        assert_eq!(db.replay().copied, n, "every test database must hold the chain");
        head = db.replay().template.clone();
        assert!(spares == 0 || db.replay().from_spare, "a warm pool must hand out a spare: {:?}", db.replay());
    }

    // (b) Back to back, each database held until the end (tests running at once): the spares drain and the rate
    // becomes what copying the template sustains.
    testdb::wait_for_spares();
    let mut held = Vec::new();
    let mut draining = Vec::new();
    let all = Instant::now();
    for _ in 0..reps {
        let started = Instant::now();
        held.push(TestDatabase::on_server(server, &migrations).expect("a test database"));
        draining.push(started.elapsed());
        if trace {
            eprintln!("  back to back #{}: {:.1} ms, spare: {}", held.len(), ms(started.elapsed()), held[held.len() - 1].replay().from_spare);
        }
    }
    let all = all.elapsed();
    let from_spares = held.iter().filter(|db| db.replay().from_spare).count();
    drop(held);
    testdb::wait_for_spares();

    // (c) What a test database cost before the spares: one copy of the template, made on demand.
    let url = DatabaseUrl::parse(server, UrlSource::Flag).expect("the URL parses");
    let mut copies = Vec::new();
    if let Some(head) = &head {
        for _ in 0..reps {
            let started = Instant::now();
            let db = ScratchDatabase::create_named(&url, testdb::PREFIX, Some(head)).expect("a copy of the template");
            copies.push(started.elapsed());
            drop(db);
        }
    }

    // (d) What tests did before templates: a new database with the whole chain replayed.
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

    let show = |times: &[Duration]| {
        if times.is_empty() {
            return "-".to_owned();
        }
        let (m, lo, hi) = median(times.to_vec());
        format!("{m:.1} ms ({lo:.1}-{hi:.1}, {} runs)", times.len())
    };
    println!(
        "{n} migrations ({spares} spares; the first database, building the template: {:.0} ms):\n  \
         warm pool (claim a ready spare): {}\n  \
         back to back, pool draining: {} per database, {:.1} databases/s ({from_spares} of {} from spares)\n  \
         one template copy on demand (no spares): {}\n  \
         replaying the chain into a new database: {}",
        ms(built),
        show(&warm),
        show(&draining),
        reps as f64 / all.as_secs_f64(),
        reps,
        show(&copies),
        show(&replays),
    );
}
