//! The installer's configuration: `curtin/<version>/user-data` for a
//! machine being deployed.
//!
//! MAAS answers it with curtin packed together with its configuration
//! (`get_curtin_userdata`: the merged config plus `curtin install <image
//! URL>`). maasd serves the merged configuration itself — storage, network,
//! reporting, late commands, debconf and the `cloudconfig:` files carrying
//! the node's MAAS datasource — with the image MAAS passes on curtin's
//! command line written as the `sources:` entry curtin makes of it
//! (`00_cmdline`). The installer the ephemeral environment carries reads
//! exactly this; curtin reads the same keys from a `--config` file.

use maas_core::NodeStatus;

use super::{MetaReply, Req};
use crate::api::ApiError;
use crate::db::DbConn;
use crate::db::machines::StoredMachine;
use crate::db::users::Token;
use crate::rack::images;

/// Whether `curtin/…/user-data` should be the installer's configuration.
pub fn wants_config(sm: &StoredMachine) -> bool {
    let m = &sm.record.machine;
    m.status == NodeStatus::Deploying && !m.ephemeral_deploy
}

/// `sources:` as curtin records an image given on its command line.
fn sources_yaml(image: &images::InstallImage) -> String {
    // URLs the rack builds are plain ASCII without quotes or spaces; quote
    // anyway so YAML never reads `:` inside them as structure.
    format!(
        "sources:\n  00_cmdline:\n    type: {}\n    uri: \"{}\"\n",
        image.kind, image.url
    )
}

/// The curtin configuration of a deploying machine, with its image.
pub fn user_data(
    conn: &mut DbConn,
    req: &Req<'_>,
    token: &Token,
    sm: &StoredMachine,
) -> Result<MetaReply, ApiError> {
    let m = &sm.record.machine;
    let mut ctx = req.render_ctx(Some(token));
    ctx.swap_size = sm.record.extra.swap_size;
    super::add_deployment_settings(conn, m, &mut ctx)?;
    // A machine never commissioned has no layout yet; MAAS applies the
    // default one at allocation, so render with it.
    let with_layout;
    let m = if m.storage.is_empty() && m.boot_disk().is_some() {
        let mut copy = m.clone();
        let mut lr = maas_core::LayoutRequest::new(maas_core::StorageLayout::Flat);
        lr.allow_fallback = true;
        maas_core::storage::apply_layout(&mut copy, &lr)
            .map_err(|e| ApiError::bad_request(format!("Cannot apply the default layout: {e}")))?;
        with_layout = copy;
        &with_layout
    } else {
        m
    };
    let mut yaml = maas_core::render::curtin_config(m, &ctx).map_err(|e| {
        ApiError::bad_request(format!("Cannot render the curtin configuration: {e}"))
    })?;
    let (arch, subarch) = m
        .architecture
        .split_once('/')
        .unwrap_or((m.architecture.as_str(), "generic"));
    // No rack has told where its images are (a region without an
    // in-process rack): the configuration goes out without `sources:`.
    let Some(rack) = images::registered(conn)? else {
        return Ok(MetaReply::Body(
            200,
            "application/octet-stream",
            yaml.into_bytes(),
        ));
    };
    match images::install_image(&rack, &m.osystem, arch, subarch, &m.distro_series) {
        Some(i) => {
            if !yaml.ends_with('\n') {
                yaml.push('\n');
            }
            yaml.push_str(&sources_yaml(&i));
        }
        // MAAS refuses too (MissingBootImage): the installer has nothing
        // to write.
        None => {
            return Err(ApiError::not_found(format!(
                "No image could be found for the given selection: os={}, arch={arch}, \
                 subarch={subarch}, series={}, purpose=xinstall.",
                m.osystem, m.distro_series
            )));
        }
    }
    Ok(MetaReply::Body(
        200,
        "application/octet-stream",
        yaml.into_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_is_a_top_level_mapping_curtin_reads() {
        let y = sources_yaml(&images::InstallImage {
            kind: "tgz",
            url: "http://192.0.2.1:5248/images/ab/abcd".into(),
        });
        assert_eq!(
            y,
            "sources:\n  00_cmdline:\n    type: tgz\n    uri: \"http://192.0.2.1:5248/images/ab/abcd\"\n"
        );
    }
}
