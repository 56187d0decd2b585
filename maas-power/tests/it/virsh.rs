//! The virsh driver against libvirt's built-in test driver through the real
//! `virsh` (Debian libvirt-clients). The test driver keeps state per
//! connection, so every call sees the file's initial state: one domain
//! running, one shut off.

use maas_core::PowerState;
use maas_power::{OffMode, PowerAction, PowerParams, PowerTarget};

use crate::common::{fast_manager, require_program};

const NODE_XML: &str = r#"<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-off</name><memory>65536</memory><os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-on</name><memory>65536</memory><os><type>hvm</type></os>
    <test:runstate>1</test:runstate>
  </domain>
</node>"#;

fn target(uri: &str, domain: &str) -> PowerTarget {
    PowerTarget::new(
        PowerParams::new()
            .with("power_address", uri)
            .with("power_id", domain),
    )
}

#[tokio::test]
async fn virsh_against_libvirt_test_driver() {
    require_program("virsh", "Debian package libvirt-clients");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.xml");
    std::fs::write(&file, NODE_XML).unwrap();
    let uri = format!("test://{}", file.display());
    let m = fast_manager();
    let d = m.registry().get("virsh").unwrap();

    assert_eq!(
        m.perform("virsh", &target(&uri, "vm-off"), PowerAction::Query)
            .await
            .unwrap(),
        PowerState::Off
    );
    assert_eq!(
        m.perform("virsh", &target(&uri, "vm-on"), PowerAction::Query)
            .await
            .unwrap(),
        PowerState::On
    );
    // Single driver calls: `virsh start` on the shut-off domain and
    // `virsh destroy` on the running one both succeed against libvirt.
    d.power_on(&target(&uri, "vm-off")).await.unwrap();
    d.power_off(&target(&uri, "vm-on"), OffMode::Hard)
        .await
        .unwrap();
    d.power_off(&target(&uri, "vm-on"), OffMode::Soft)
        .await
        .unwrap();
    // Already in the wanted state: nothing to do, no error.
    d.power_on(&target(&uri, "vm-on")).await.unwrap();
    d.power_off(&target(&uri, "vm-off"), OffMode::Hard)
        .await
        .unwrap();

    // The default test connection too (domain `test`, running).
    assert_eq!(
        d.power_query(&target("test:///default", "test"))
            .await
            .unwrap(),
        PowerState::On
    );
}

#[tokio::test]
async fn virsh_unknown_domain_is_fatal() {
    require_program("virsh", "Debian package libvirt-clients");
    let m = fast_manager();
    let e = m
        .perform(
            "virsh",
            &target("test:///default", "no-such-vm"),
            PowerAction::Query,
        )
        .await
        .unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert!(e.to_string().contains("no-such-vm"), "{e}");
}
