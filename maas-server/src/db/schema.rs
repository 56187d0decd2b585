//! The diesel table definitions, matching `migrations/{sqlite,postgres}`.
//! Written by hand in the shape `diesel print-schema` emits (the diesel CLI
//! is not installed here); the migration test checks they agree.
#![allow(missing_docs)]

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        email -> Text,
        password -> Text,
        is_superuser -> Bool,
        created -> BigInt,
    }
}

diesel::table! {
    tokens (id) {
        id -> BigInt,
        username -> Text,
        name -> Text,
        consumer_key -> Text,
        token_key -> Text,
        token_secret -> Text,
        created -> BigInt,
    }
}

diesel::table! {
    machines (id) {
        id -> BigInt,
        system_id -> Text,
        hostname -> Text,
        status -> Integer,
        owner -> Nullable<Text>,
        version -> BigInt,
        data -> Text,
        created -> BigInt,
        updated -> BigInt,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        system_id -> Text,
        hostname -> Text,
        username -> Text,
        level -> Text,
        type_name -> Text,
        description -> Text,
        created -> BigInt,
    }
}

diesel::table! {
    objects (id) {
        id -> BigInt,
        kind -> Text,
        name -> Text,
        data -> Text,
    }
}

diesel::table! {
    settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(users, tokens, machines, events, objects, settings);
