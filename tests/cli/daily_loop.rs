//! Smaller things found by following the README's daily loop (issue 21, item 7): hints that name where the URL
//! really came from, and `stamp` on a database that has nothing yet.

use crate::support::Env;

#[test]
fn a_refused_connection_names_the_dotenv_file_the_url_came_from() {
    let env = Env::new("dotenv_hint");
    env.ws.write("migrations/2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);");
    env.ws.write(".env", "DATABASE_URL=postgres://app@127.0.0.1:9/app\n");
    let outcome = env.raw(&["status"], &[]);
    assert_ne!(outcome.code, 0, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("remove DATABASE_URL from ") && outcome.stderr.contains(".env to use the managed local server"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains("unset DATABASE_URL"), "{}", outcome.stderr);
}

#[test]
fn stamp_on_an_empty_database_warns_and_doctor_fails_the_extension_it_never_created() {
    let env = Env::anonchat("stamp_empty");
    let stamped = env.cli(&["stamp", "2025-01-15-090400"]);
    stamped.assert_code(0);
    assert!(stamped.stderr.contains("warning: the database has no tables of its own: stamp only records migrations as applied"), "{}", stamped.stderr);
    assert!(
        stamped.stderr.contains("warning: 2025-01-15-090000_enable_extensions creates extension `vector`, which is not installed"),
        "{}",
        stamped.stderr
    );
    assert_eq!(env.db.applied_versions().len(), 5);

    let doctor = env.cli(&["doctor"]);
    assert_ne!(doctor.code, 0, "{}", doctor.stdout);
    assert!(
        doctor.stdout.contains("not installed, although 2025-01-15-090000_enable_extensions which creates it is recorded as applied"),
        "{}",
        doctor.stdout
    );

    // Where the schema exists, stamp says nothing more.
    let baselined = Env::anonchat("stamp_existing");
    baselined.cli(&["run"]).assert_code(0);
    baselined.cli(&["stamp", "--delete", "2025-01-15-090400"]).assert_code(0);
    let quiet = baselined.cli(&["stamp", "2025-01-15-090400"]);
    quiet.assert_code(0);
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.stderr);
}
