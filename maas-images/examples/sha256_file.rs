//! Hashes a file with the importer's [`maas_images::Hasher`] (RustCrypto
//! `sha2`) and, for comparison in the same process, with OpenSSL's SHA-256,
//! printing each digest and rate. `bench/images/run.sh` runs it beside
//! `openssl dgst -sha256` to show what the hashing stage alone can do.
//!
//! ```sh
//! cargo run --release -p maas-images --example sha256_file -- FILE
//! ```

use std::io::Read;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: sha256_file FILE"))?;
    let mut buf = vec![0u8; 2 << 20];
    let run = |name: &str, update: &mut dyn FnMut(&[u8]), buf: &mut [u8]| -> anyhow::Result<()> {
        let mut f = std::fs::File::open(&path)?;
        let started = Instant::now();
        let mut total = 0u64;
        loop {
            let n = f.read(buf)?;
            if n == 0 {
                break;
            }
            update(&buf[..n]);
            total += n as u64;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{name}: {:.0} MB/s ({total} bytes in {secs:.3} s)",
            total as f64 / secs / 1e6
        );
        Ok(())
    };
    let mut h = maas_images::Hasher::new();
    run("maas_images::Hasher", &mut |d| h.update(d), &mut buf)?;
    println!("  {}", h.finish());
    let mut o = openssl::sha::Sha256::new();
    run("openssl::sha::Sha256", &mut |d| o.update(d), &mut buf)?;
    println!("  {}", hex::encode(o.finish()));
    Ok(())
}
