//! The listing migration (`2026-11-21-200000_api_listing`) converts rows
//! written in the first schema. Shared by the SQLite test here and the
//! PostgreSQL one in `tests/tests/db_migrations_pg.rs` (included by path).

use diesel::prelude::*;
use maas_server::db::{self, DbConn};

/// The listing migration's version.
const LISTING: &str = "2026-11-21-200000";

/// Writes a machine the way the first schema stored it (JSON only), migrates
/// forward and checks that SQL filters now find it by its columns and child
/// rows.
pub fn converts_existing_rows(conn: &mut DbConn) {
    use maas_core::hardware::{BlockDevice, Interface};
    use maas_core::{Machine, NodeStatus, SystemId};
    use maas_server::db::machines::{self, MachineExtra, MachineQuery, MachineRecord};
    use maas_server::db::schema::machines as t;

    db::migrate(conn).unwrap();
    db::revert_from(conn, LISTING).unwrap();
    let machine = Machine {
        system_id: SystemId::from_number(8_234_567).unwrap(),
        hostname: "old-row".into(),
        status: NodeStatus::Ready,
        architecture: "arm64/generic".into(),
        cpu_count: 12,
        memory_mib: 4096,
        tags: vec!["gpu".into(), "rack2".into()],
        zone: "z1".into(),
        pool: "p1".into(),
        domain: "maas".into(),
        interfaces: vec![Interface {
            id: 1,
            name: "eth0".into(),
            mac: "52:54:00:aa:bb:cc".parse().unwrap(),
            ..Interface::default()
        }],
        block_devices: vec![BlockDevice {
            id: 1,
            name: "sda".into(),
            size: 1_000_000_000,
            ..BlockDevice::default()
        }],
        ..Machine::default()
    };
    let record = MachineRecord {
        machine,
        extra: MachineExtra::default(),
    };
    diesel::insert_into(t::table)
        .values((
            t::system_id.eq(record.machine.system_id.as_str()),
            t::hostname.eq("old-row"),
            t::status.eq(4),
            t::version.eq(1i64),
            t::data.eq(serde_json::to_string(&record).unwrap()),
            t::created.eq(0i64),
            t::updated.eq(0i64),
        ))
        .execute(conn)
        .unwrap();
    db::migrate(conn).unwrap();

    let found = |conn: &mut DbConn, q: MachineQuery| -> Vec<String> {
        machines::query(conn, &q)
            .unwrap()
            .into_iter()
            .map(|m| m.record.machine.hostname)
            .collect()
    };
    let one = vec!["old-row".to_owned()];
    let q = MachineQuery::default;
    assert_eq!(found(conn, q()), one);
    for (what, query) in [
        (
            "tags",
            MachineQuery {
                tags: vec!["gpu".into(), "rack2".into()],
                ..q()
            },
        ),
        (
            "mac",
            MachineQuery {
                macs: vec!["52:54:00:aa:bb:cc".into()],
                ..q()
            },
        ),
        (
            "zone",
            MachineQuery {
                zones: vec!["z1".into()],
                ..q()
            },
        ),
        (
            "pool",
            MachineQuery {
                pools: vec!["p1".into()],
                ..q()
            },
        ),
        (
            "arch",
            MachineQuery {
                arches: vec!["arm64".into()],
                ..q()
            },
        ),
        (
            "full arch",
            MachineQuery {
                arches: vec!["arm64/generic".into()],
                ..q()
            },
        ),
        (
            "cpu",
            MachineQuery {
                min_cpu_count: Some(12),
                ..q()
            },
        ),
        (
            "memory",
            MachineQuery {
                min_memory_mib: Some(4096),
                ..q()
            },
        ),
        (
            "status",
            MachineQuery {
                statuses: vec![NodeStatus::Ready],
                ..q()
            },
        ),
    ] {
        assert_eq!(found(conn, query), one, "{what} filter after migration");
    }
    for (what, query) in [
        (
            "other tag",
            MachineQuery {
                tags: vec!["gpu".into(), "nope".into()],
                ..q()
            },
        ),
        (
            "not_tags",
            MachineQuery {
                not_tags: vec!["rack2".into()],
                ..q()
            },
        ),
        (
            "other mac",
            MachineQuery {
                macs: vec!["52:54:00:aa:bb:cd".into()],
                ..q()
            },
        ),
        (
            "other arch",
            MachineQuery {
                arches: vec!["amd64".into()],
                ..q()
            },
        ),
        (
            "more cpu",
            MachineQuery {
                min_cpu_count: Some(13),
                ..q()
            },
        ),
        (
            "not zone",
            MachineQuery {
                not_zones: vec!["z1".into()],
                ..q()
            },
        ),
    ] {
        assert!(
            found(conn, query).is_empty(),
            "{what} filter after migration"
        );
    }
    // The converted row keeps working through the write path.
    let mut sm = machines::get(conn, &SystemId::from_number(8_234_567).unwrap())
        .unwrap()
        .unwrap();
    sm.record.machine.tags = vec!["new".into()];
    assert!(machines::update(conn, &sm, 1).unwrap());
    assert_eq!(
        found(
            conn,
            MachineQuery {
                tags: vec!["new".into()],
                ..q()
            }
        ),
        one
    );
    assert!(
        found(
            conn,
            MachineQuery {
                tags: vec!["gpu".into()],
                ..q()
            }
        )
        .is_empty()
    );
    assert!(machines::delete(conn, &sm.record.machine.system_id).unwrap());
    assert!(found(conn, q()).is_empty());
}
