//! The models against a real database migrated with the Anonymous Chat chain: rows round-trip (the enum and the
//! vector included), and a nearest-neighbour query written with diesel uses the HNSW index.

use anonchat_schema::schema::{messages, request_log, users};
use anonchat_schema::{Message, NewMessage, NewRequestLogEntry, NewUser, RequestLogEntry, RequestMethod, User};
use anonmigrate_core::testdb::TestDatabase;
use anonmigrate_testkit::{cluster, repo_root};
use diesel::prelude::*;
use pgvector::{Vector, VectorExpressionMethods};

const DIMENSIONS: usize = 384;

/// A fresh copy of the chain's template database, as an application's tests get one (`anonmigrate_core::testdb`;
/// here on the test cluster), dropped at the end of the test.
fn migrated() -> (TestDatabase, PgConnection) {
    let db = TestDatabase::on_server(&cluster().url("postgres"), &repo_root().join("migrations")).expect("a migrated test database");
    let conn = PgConnection::establish(db.url()).expect("a connection to the test database");
    (db, conn)
}

/// Deterministic pseudo-random unit-ish vectors (no RNG dependency needed for test data).
fn vector(seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..DIMENSIONS)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect()
}

#[test]
fn rows_round_trip_through_the_models() {
    let (_db, mut conn) = migrated();
    let alice: User = diesel::insert_into(users::table)
        .values(NewUser { username: "alice".into() })
        .returning(User::as_returning())
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(alice.username, "alice");
    for method in RequestMethod::ALL {
        diesel::insert_into(request_log::table)
            .values(NewRequestLogEntry {
                method,
                path: "/rooms".into(),
                status_code: 200,
                duration_ms: 1.5,
                user_id: Some(alice.id),
            })
            .execute(&mut conn)
            .unwrap();
    }
    let logged: Vec<RequestMethod> = request_log::table
        .select(RequestLogEntry::as_select())
        .order(request_log::id)
        .load(&mut conn)
        .unwrap()
        .into_iter()
        .map(|r| r.method)
        .collect();
    assert_eq!(logged, RequestMethod::ALL);
    #[derive(QueryableByName)]
    struct Method {
        #[diesel(sql_type = diesel::sql_types::Text)]
        method: String,
    }
    let first: Method = diesel::sql_query("SELECT method::text AS method FROM request_log ORDER BY id LIMIT 1").get_result(&mut conn).unwrap();
    assert_eq!(first.method, "GET");

    let message: Message = diesel::insert_into(messages::table)
        .values(NewMessage {
            room: "lobby".into(),
            author_id: alice.id,
            body: "hello".into(),
            embedding: Some(Vector::from(vector(1))),
        })
        .returning(Message::as_returning())
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(message.embedding.unwrap().to_vec(), vector(1));
}

#[test]
fn nearest_neighbours_use_the_hnsw_index() {
    let (_db, mut conn) = migrated();
    let author: i64 = diesel::insert_into(users::table)
        .values(NewUser { username: "bob".into() })
        .returning(users::id)
        .get_result(&mut conn)
        .unwrap();
    let rows: Vec<NewMessage> = (0..300)
        .map(|i| NewMessage {
            room: "lobby".into(),
            author_id: author,
            body: format!("message {i}"),
            embedding: Some(Vector::from(vector(i))),
        })
        .collect();
    diesel::insert_into(messages::table).values(&rows).execute(&mut conn).unwrap();

    let probe = Vector::from(vector(42));
    let nearest = || {
        messages::table
            .select(messages::body)
            .order(messages::embedding.cosine_distance(probe.clone()))
            .limit(5)
    };
    // Exact search first, as the reference; then the same query on the index.
    diesel::sql_query("SET enable_indexscan = off").execute(&mut conn).unwrap();
    let exact: Vec<String> = nearest().load(&mut conn).unwrap();
    diesel::sql_query("RESET enable_indexscan").execute(&mut conn).unwrap();
    diesel::sql_query("SET enable_seqscan = off").execute(&mut conn).unwrap();
    let indexed: Vec<String> = nearest().load(&mut conn).unwrap();
    assert_eq!(indexed[0], "message 42", "the probe's own row is its nearest neighbour");
    // HNSW is approximate: equality with the exact top 5 is not promised, a high recall is.
    assert_eq!(exact[0], "message 42");
    let recall = indexed.iter().filter(|body| exact.contains(body)).count();
    assert!(indexed.len() == 5 && recall >= 4, "recall {recall}/5: indexed {indexed:?}, exact {exact:?}");

    // EXPLAIN the statement diesel generated, with its bind spliced in as a literal.
    let sql = diesel::debug_query::<diesel::pg::Pg, _>(&nearest()).to_string();
    let statement = sql.split(" -- binds:").next().unwrap();
    let literal = format!("'{}'::vector", serde_like_vector(&vector(42)));
    let explain_sql = statement.replace("$1", &literal).replace("$2", "5");
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let plan: Vec<Plan> = diesel::sql_query(format!("EXPLAIN {explain_sql}")).load(&mut conn).unwrap();
    let plan: Vec<String> = plan.into_iter().map(|p| p.line).collect();
    assert!(
        plan.iter().any(|l| l.contains("messages_embedding_hnsw_idx")),
        "the nearest-neighbour query does not use the HNSW index:\n{}",
        plan.join("\n")
    );
}

fn serde_like_vector(values: &[f32]) -> String {
    let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", parts.join(","))
}
