// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "request_method"))]
    pub struct RequestMethod;
}

diesel::table! {
    use diesel::sql_types::*;
    use pgvector::sql_types::*;

    messages (id) {
        id -> Int8,
        room -> Text,
        author_id -> Int8,
        body -> Text,
        embedding -> Nullable<Vector>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use pgvector::sql_types::*;
    use super::sql_types::RequestMethod;

    request_log (id) {
        id -> Int8,
        method -> RequestMethod,
        path -> Text,
        status_code -> Int2,
        duration_ms -> Float8,
        user_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use pgvector::sql_types::*;

    users (id) {
        id -> Int8,
        #[max_length = 64]
        username -> Varchar,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(messages -> users (author_id));
diesel::joinable!(request_log -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(messages, request_log, users,);
