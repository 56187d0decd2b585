//! The OpenAPI document the real `maasd` serves passes the reference
//! validator (openapi-spec-validator from PyPI) and covers every action
//! of the `describe` document, both being generated from one route table.

use std::process::Command;

use maas_e2e::{Maasd, maasd_binary, venv_bin};

#[test]
fn openapi_document_is_valid_and_matches_describe() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    let (status, ctype, body) = m.get("/MAAS/api/2.0/openapi.json").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(ctype, "application/json");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();

    let validator = venv_bin().unwrap().join("openapi-spec-validator");
    assert!(
        validator.exists(),
        "openapi-spec-validator is missing from the test virtualenv: install the PyPI package \
         openapi-spec-validator with scripts/install-deps.sh"
    );
    let f = m.data_dir.path().join("openapi.json");
    std::fs::write(&f, &body).unwrap();
    let out = Command::new(&validator).arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator rejected the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, _, describe) = m.get("/MAAS/api/2.0/describe/").unwrap();
    assert_eq!(status, 200);
    let describe: serde_json::Value = serde_json::from_str(&describe).unwrap();
    let mut checked = 0;
    for h in describe["handlers"].as_array().unwrap() {
        let path = h["path"].as_str().unwrap();
        for a in h["actions"].as_array().unwrap() {
            let method = a["method"].as_str().unwrap().to_ascii_lowercase();
            let op = &doc["paths"][path][&method];
            assert!(op.is_object(), "{method} {path} missing from OpenAPI");
            if let Some(name) = a["op"].as_str() {
                let ops = op["parameters"][0]["schema"]["enum"].as_array().unwrap();
                assert!(ops.iter().any(|o| o == name), "{method} {path} op={name}");
            }
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} describe actions");
}
