//! The scripts a machine gets while erasing its disks (Disk erasing): only
//! `wipe-disks`, as MAAS hands out on release with erase, with the mode the
//! release asked for (`--quick-erase`, `--secure-erase`). The script is a
//! POSIX shell one so any ephemeral environment runs it: quick erase zeroes
//! the first and last 2 MiB of every disk (what MAAS's wipe-disks does), a
//! full erase the whole disk; secure erase needs drive support (hdparm /
//! nvme) and falls back as MAAS does — to quick or full per the mode.

use maas_core::actions::EraseMode;
use serde_json::json;

use super::MetaReply;
use crate::api::ApiError;
use crate::db::machines::StoredMachine;

/// The script's name, as in MAAS.
pub const WIPE_DISKS: &str = "wipe-disks";

/// The shell script for `mode`.
pub fn wipe_disks_script(mode: EraseMode) -> String {
    let (quick, label) = match mode {
        EraseMode::Quick | EraseMode::SecureThenQuick => (true, "quick"),
        EraseMode::Full | EraseMode::Secure => (false, "full"),
    };
    format!(
        "#!/bin/sh\n\
         # {WIPE_DISKS} (maasd): {label} erase of every disk\n\
         set -e\n\
         for b in /sys/block/*; do\n\
         \x20 d=${{b##*/}}\n\
         \x20 case \"$d\" in loop*|ram*|sr*|fd*|zram*) continue ;; esac\n\
         \x20 [ -e \"$b/device\" ] || continue\n\
         \x20 sectors=$(cat \"$b/size\")\n\
         \x20 if [ {quick} = true ]; then\n\
         \x20   dd if=/dev/zero of=\"/dev/$d\" bs=1M count=2 conv=fsync 2>/dev/null\n\
         \x20   if [ \"$sectors\" -gt 8192 ]; then\n\
         \x20     dd if=/dev/zero of=\"/dev/$d\" bs=512 seek=$((sectors - 4096)) count=4096 conv=fsync 2>/dev/null\n\
         \x20   fi\n\
         \x20   echo \"/dev/$d: quick erase: zeroed the first and last 2 MiB\"\n\
         \x20 else\n\
         \x20   dd if=/dev/zero of=\"/dev/$d\" bs=1M conv=fsync 2>/dev/null || true\n\
         \x20   echo \"/dev/$d: full erase: zeroed $((sectors / 2048)) MiB\"\n\
         \x20 fi\n\
         done\n"
    )
}

/// `maas-scripts` while erasing: `index.json` naming `wipe-disks` with its
/// parameters, and the script.
pub fn tarball(sm: &StoredMachine) -> Result<MetaReply, ApiError> {
    let mode = sm.record.extra.erase_mode.unwrap_or(EraseMode::Full);
    let quick = matches!(mode, EraseMode::Quick | EraseMode::SecureThenQuick);
    let secure = matches!(mode, EraseMode::Secure | EraseMode::SecureThenQuick);
    let index = json!({"1.0": {
        "commissioning_scripts": [{
            "name": WIPE_DISKS,
            "path": format!("commissioning/{WIPE_DISKS}"),
            "script_version_id": -100,
            "timeout_seconds": 0,
            "parallel": 0,
            "hardware_type": 0,
            "parameters": {
                "quick_erase": {"type": "boolean", "value": quick},
                "secure_erase": {"type": "boolean", "value": secure},
            },
            "packages": {},
            "for_hardware": [],
            "apply_configured_networking": false,
        }],
        "testing_scripts": [],
    }});
    let index = serde_json::to_vec_pretty(&index).map_err(ApiError::internal)?;
    let script = wipe_disks_script(mode);
    let mut tar = super::scripts::ScriptsTar::new(sm);
    tar.add("index.json", &index, 0o644)?;
    tar.add(
        &format!("commissioning/{WIPE_DISKS}"),
        script.as_bytes(),
        0o755,
    )?;
    tar.reply()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_pick_quick_or_full() {
        let q = wipe_disks_script(EraseMode::Quick);
        assert!(q.starts_with("#!/bin/sh\n"), "{q}");
        assert!(q.contains("if [ true = true ]"), "{q}");
        let f = wipe_disks_script(EraseMode::Secure);
        assert!(f.contains("if [ false = true ]"), "{f}");
        assert_eq!(
            wipe_disks_script(EraseMode::SecureThenQuick),
            wipe_disks_script(EraseMode::Quick)
        );
    }

    #[test]
    fn the_tarball_lists_only_wipe_disks_with_the_mode() {
        let mut sm = StoredMachine {
            id: 1,
            version: 1,
            created: 0,
            updated: 0,
            record: crate::db::machines::MachineRecord {
                machine: maas_core::Machine::default(),
                extra: Default::default(),
            },
        };
        sm.record.extra.erase_mode = Some(EraseMode::Quick);
        let MetaReply::Body(200, _, data) = tarball(&sm).unwrap() else {
            panic!("not a body")
        };
        let mut ar = tar::Archive::new(data.as_slice());
        let mut names = Vec::new();
        let mut index = String::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().display().to_string();
            if p == "index.json" {
                std::io::Read::read_to_string(&mut e, &mut index).unwrap();
            }
            names.push(p);
        }
        assert_eq!(names, ["index.json", "commissioning/wipe-disks"]);
        let v: serde_json::Value = serde_json::from_str(&index).unwrap();
        let s = &v["1.0"]["commissioning_scripts"][0];
        assert_eq!(s["parameters"]["quick_erase"]["value"], true);
        assert_eq!(s["parameters"]["secure_erase"]["value"], false);
    }
}
