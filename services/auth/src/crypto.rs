//! Secrets: argon2id password hashes (off the async threads), random tokens, and the
//! SHA-256 digests single-use secrets are stored as.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hashes a password with argon2id on the blocking pool.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await?
    .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Verifies on the blocking pool. With no stored hash (unknown e-mail, Google-only account)
/// a dummy hash is checked, so the answer takes as long as a wrong password.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false);
    ok && known
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(b"not the password of anyone", &salt).map(|h| h.to_string()).unwrap_or_default()
    })
}

/// 32 random bytes, base64url: refresh tokens, reset and invite tokens, hand-over codes.
#[cfg(test)]
mod successor_tests {
    #[test]
    fn a_sealed_successor_opens_only_with_the_token_it_replaced() {
        let (old, next) = (super::random_token(), super::random_token());
        let sealed = super::seal_successor(&old, &next);
        assert_ne!(sealed, next.as_bytes());
        assert_eq!(super::open_successor(&old, &sealed).as_deref(), Some(next.as_str()));
        assert_ne!(super::open_successor(&super::random_token(), &sealed).as_deref(), Some(next.as_str()));
    }
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Six digits from the OS CSPRNG, uniformly (rejection sampling, no modulo bias).
pub fn otp_code() -> String {
    loop {
        let n = rand::rngs::OsRng.next_u32();
        // 4_294_000_000 is the largest multiple of 1_000_000 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// How single-use secrets are stored: high-entropy tokens need no slow hash.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Seals a refresh token's successor so that only a holder of the token it replaced can
/// read it back (the two-tabs grace period): XOR with a pad derived from the presented
/// token. The presented token is 32 random bytes and seals exactly one successor, so the
/// pad is never reused.
pub fn seal_successor(presented: &str, successor: &str) -> Vec<u8> {
    successor.bytes().zip(pad(presented, successor.len())).map(|(a, b)| a ^ b).collect()
}

/// The successor [`seal_successor`] sealed, given the same presented token.
pub fn open_successor(presented: &str, sealed: &[u8]) -> Option<String> {
    String::from_utf8(sealed.iter().zip(pad(presented, sealed.len())).map(|(a, b)| a ^ b).collect()).ok()
}

fn pad(presented: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = 0u32;
    while out.len() < len {
        out.extend_from_slice(&Sha256::digest(format!("cashvio-refresh-successor:{block}:{presented}").as_bytes()));
        block += 1;
    }
    out.truncate(len);
    out
}

/// OTPs are only 6 digits: bind the digest to the e-mail so one table of 10^6 digests does
/// not open every row. (Online guessing is what the attempt limit stops.)
pub fn otp_digest(email: &str, code: &str) -> Vec<u8> {
    Sha256::digest(format!("cashvio-otp:{email}:{code}").as_bytes()).to_vec()
}

/// Constant-time comparison for digests.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_and_unknown_users_never_do() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), Some(h.clone())).await);
        assert!(!verify_password("wrong".into(), Some(h)).await);
        assert!(!verify_password("not the password of anyone".into(), None).await);
    }

    #[test]
    fn otps_are_six_digits() {
        for _ in 0..1000 {
            let c = otp_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
