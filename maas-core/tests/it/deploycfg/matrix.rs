//! insta snapshots of the curtin config for the whole matrix, and of the
//! preseeds and vendor-data.

use maas_core::NodeStatus;
use maas_core::render::{
    commissioning_preseed, curtin_config, curtin_preseed, enlist_preseed, vendor_data,
};

use super::fixtures::{Net, ctx, machine, matrix};

#[test]
fn curtin_config_matrix_snapshots() {
    let ctx = ctx();
    let all = matrix();
    assert_eq!(all.len(), 24);
    for (name, m) in &all {
        let yaml = curtin_config(m, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_snapshot!(format!("curtin-{name}"), yaml);
    }
}

#[test]
fn preseed_and_vendor_data_snapshots() {
    let ctx = ctx();
    let mut m = machine(
        maas_core::StorageLayout::Flat,
        maas_core::BootMethod::Uefi,
        Net::Static,
    );
    insta::assert_snapshot!("preseed-curtin", curtin_preseed(&m, &ctx).unwrap());
    m.status = NodeStatus::Commissioning;
    insta::assert_snapshot!(
        "preseed-commissioning",
        commissioning_preseed(&m, &ctx).unwrap()
    );
    insta::assert_snapshot!("preseed-enlist", enlist_preseed(&ctx).unwrap());
    m.status = NodeStatus::Deploying;
    insta::assert_snapshot!("vendor-data", vendor_data(&m, &ctx).unwrap());
    m.ephemeral_deploy = true;
    insta::assert_snapshot!("vendor-data-ephemeral", vendor_data(&m, &ctx).unwrap());
}
