//! The real `maasd` binary starts and answers anonymously.

use maas_e2e::{Maasd, maasd_binary};

#[test]
fn maasd_serves_version() {
    let m = Maasd::start(&maasd_binary().unwrap()).unwrap();
    let (status, ctype, body) = m.get("/MAAS/api/2.0/version/").unwrap();
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/json"), "{ctype}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["capabilities"].to_string().contains("authenticate-api"));
    let (status, _, body) = m.get("/MAAS/api/version/").unwrap();
    assert_eq!((status, body.as_str()), (200, "2.0"));
}
