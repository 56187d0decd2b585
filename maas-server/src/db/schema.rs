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
        zone -> Text,
        pool -> Text,
        domain -> Text,
        architecture -> Text,
        arch -> Text,
        cpu_count -> BigInt,
        memory_mib -> BigInt,
        power_state -> Text,
        agent_name -> Text,
        listing -> Nullable<Text>,
    }
}

diesel::table! {
    machine_tags (machine_id, name) {
        machine_id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    machine_interfaces (machine_id, name) {
        machine_id -> BigInt,
        name -> Text,
        mac -> Text,
    }
}

diesel::table! {
    machine_blockdevices (machine_id, name) {
        machine_id -> BigInt,
        name -> Text,
        kind -> Text,
        size -> BigInt,
    }
}

diesel::joinable!(machine_tags -> machines (machine_id));
diesel::joinable!(machine_interfaces -> machines (machine_id));
diesel::joinable!(machine_blockdevices -> machines (machine_id));

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

diesel::table! {
    boot_sources (id) {
        id -> BigInt,
        name -> Text,
        url -> Text,
        keyring_filename -> Text,
        keyring_data -> Text,
        priority -> BigInt,
        enabled -> Bool,
        skip_keyring_verification -> Bool,
        created -> BigInt,
        updated -> BigInt,
    }
}

diesel::table! {
    boot_source_selections (id) {
        id -> BigInt,
        boot_source_id -> BigInt,
        os -> Text,
        release -> Text,
        arches -> Text,
        subarches -> Text,
        labels -> Text,
    }
}

diesel::table! {
    boot_resources (id) {
        id -> BigInt,
        rtype -> Text,
        name -> Text,
        architecture -> Text,
        subarches -> Text,
        title -> Text,
        sets -> Text,
        created -> BigInt,
        updated -> BigInt,
    }
}

// The named resources the API and allocation query, one table each (they
// lived in `objects` as JSON documents until `2026-11-22-215956_api`).

diesel::table! {
    zones (id) {
        id -> BigInt,
        name -> Text,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    resource_pools (id) {
        id -> BigInt,
        name -> Text,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    domains (id) {
        id -> BigInt,
        name -> Text,
        authoritative -> Nullable<Bool>,
        ttl -> Nullable<BigInt>,
        is_default -> Nullable<Bool>,
    }
}

diesel::table! {
    tags (id) {
        id -> BigInt,
        name -> Text,
        description -> Nullable<Text>,
        comment -> Nullable<Text>,
        definition -> Nullable<Text>,
        kernel_opts -> Nullable<Text>,
    }
}

diesel::table! {
    sshkeys (id) {
        id -> BigInt,
        name -> Text,
        public_key -> Nullable<Text>,
        keysource -> Nullable<Text>,
    }
}

diesel::table! {
    fabrics (id) {
        id -> BigInt,
        name -> Text,
        class_type -> Nullable<Text>,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    vlans (id) {
        id -> BigInt,
        name -> Text,
        fabric_id -> Nullable<BigInt>,
        vid -> Nullable<BigInt>,
        mtu -> Nullable<BigInt>,
        dhcp_on -> Nullable<Bool>,
        fabric -> Nullable<Text>,
        space -> Nullable<Text>,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    subnets (id) {
        id -> BigInt,
        name -> Text,
        cidr -> Nullable<Text>,
        vlan_id -> Nullable<BigInt>,
        gateway_ip -> Nullable<Text>,
        dns_servers -> Nullable<Text>,
        rdns_mode -> Nullable<BigInt>,
        allow_dns -> Nullable<Bool>,
        allow_proxy -> Nullable<Bool>,
        active_discovery -> Nullable<Bool>,
        managed -> Nullable<Bool>,
        description -> Nullable<Text>,
        space -> Nullable<Text>,
    }
}

diesel::table! {
    ipranges (id) {
        id -> BigInt,
        name -> Text,
        subnet_id -> Nullable<BigInt>,
        range_type -> Nullable<Text>,
        start_ip -> Nullable<Text>,
        end_ip -> Nullable<Text>,
        comment -> Nullable<Text>,
        username -> Nullable<Text>,
    }
}

diesel::joinable!(boot_source_selections -> boot_sources (boot_source_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    tokens,
    machines,
    machine_tags,
    machine_interfaces,
    machine_blockdevices,
    events,
    objects,
    settings,
    boot_sources,
    boot_source_selections,
    boot_resources
);
