//! Simplestreams parsing of arbitrary bytes: index and products documents
//! (after the skip-verification path, which also strips clearsign armour),
//! flattening, classification and the wanted-files computation must never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maas_images::{Index, Products, Selection, Verified, compute_wanted};

fuzz_target!(|data: &[u8]| {
    let doc = Verified::skipped("fuzz", bytes::Bytes::copy_from_slice(data));
    let _ = Index::parse(&doc);
    if let Ok(products) = Products::parse(&doc) {
        let _ = products.items();
        for name in products.products.keys() {
            let _ = products.product_kind(name);
        }
        let _ = compute_wanted(
            std::slice::from_ref(&products),
            &[Selection::new("*", "*", &["*"])],
        );
    }
});
