//! Access-token verifications per second through `JwtVerifier` (signature, expiry,
//! audience, issuer; keys cached after the first JWKS fetch).
//!
//! Run: `cargo bench -p platform --bench verify` (prints numbers; no timed assertions).
#![allow(clippy::unwrap_used, reason = "a benchmark stops with the failure")]

use std::time::{Duration, Instant};

use platform::auth::{JwtVerifier, Role, ShopRole};
use platform::ids::ShopId;
use testkit::jwt::{claims, JwksServer, SigningKey};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let key = SigningKey::generate("bench");
        let jwks = JwksServer::start(&[&key]).await;
        let verifier = JwtVerifier::new(jwks.config());
        let shops: Vec<_> = (0..3).map(|_| (ShopId::new(), ShopRole::ShopStaff)).collect();
        let tokens: Vec<String> = (0..1_000).map(|_| key.sign(&claims(Role::ShopStaff, &shops, 900))).collect();
        verifier.verify(&tokens[0]).await.expect("warm-up verifies");

        for tasks in [1usize, 2, 4] {
            let window = Duration::from_secs(3);
            let start = Instant::now();
            let mut handles = Vec::new();
            for t in 0..tasks {
                let verifier = verifier.clone();
                let tokens = tokens.clone();
                handles.push(tokio::spawn(async move {
                    let mut n = 0u64;
                    let mut i = t;
                    while start.elapsed() < window {
                        verifier.verify(&tokens[i % tokens.len()]).await.expect("verifies");
                        n += 1;
                        i += 1;
                    }
                    n
                }));
            }
            let mut total = 0u64;
            for h in handles {
                total += h.await.expect("task");
            }
            let secs = start.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let rate = total as f64 / secs;
            println!(
                "token verification (EdDSA), {tasks} task(s): {rate:>10.0} verifications/s ({total} in {secs:.2} s)"
            );
        }
        println!("JWKS fetches during the run: {}", jwks.fetches());
    });
}
