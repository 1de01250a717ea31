//! AES-256-GCM sealing of wallet amounts under a shop's data key. The associated data binds
//! the wallet id, the entry id (nil for the wallet's own state) and the version, so a
//! ciphertext moved to another wallet, another entry or another version does not open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use uuid::Uuid;
use zeroize::Zeroizing;

const NONCE: usize = 12;

/// A plaintext data key: in memory only, wiped when dropped.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// From KMS's plaintext (exactly 32 bytes).
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        if bytes.len() != key.len() {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_slice()))
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// What a sealed value is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub wallet_id: Uuid,
    /// Nil for the wallet's state.
    pub entry_id: Uuid,
    pub version: i64,
}

impl Binding {
    fn bytes(&self) -> [u8; 40] {
        let mut aad = [0u8; 40];
        aad[..16].copy_from_slice(self.wallet_id.as_bytes());
        aad[16..32].copy_from_slice(self.entry_id.as_bytes());
        aad[32..].copy_from_slice(&self.version.to_be_bytes());
        aad
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a wallet value failed its integrity check")]
pub struct Tampered;

/// Two signed numbers (an amount in minor units and loyalty points), sealed.
pub fn seal(key: &DataKey, binding: Binding, amount: i64, points: i64) -> Vec<u8> {
    let mut plain = Zeroizing::new([0u8; 16]);
    plain[..8].copy_from_slice(&amount.to_be_bytes());
    plain[8..].copy_from_slice(&points.to_be_bytes());
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = binding.bytes();
    // Encrypting a 16-byte message with a valid key and nonce cannot fail.
    let sealed = key.cipher().encrypt(&nonce, Payload { msg: plain.as_slice(), aad: &aad }).unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE + sealed.len());
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(&sealed);
    out
}

/// Opens what [`seal`] made with the same key and binding.
pub fn open(key: &DataKey, binding: Binding, sealed: &[u8]) -> Result<(i64, i64), Tampered> {
    if sealed.len() < NONCE {
        return Err(Tampered);
    }
    let (nonce, body) = sealed.split_at(NONCE);
    let aad = binding.bytes();
    let plain = Zeroizing::new(
        key.cipher().decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: &aad }).map_err(|_| Tampered)?,
    );
    if plain.len() != 16 {
        return Err(Tampered);
    }
    let mut a = [0u8; 8];
    let mut p = [0u8; 8];
    a.copy_from_slice(&plain[..8]);
    p.copy_from_slice(&plain[8..]);
    Ok((i64::from_be_bytes(a), i64::from_be_bytes(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> DataKey {
        DataKey::from_slice(&[b; 32]).unwrap()
    }

    #[test]
    fn opens_only_with_the_same_key_wallet_entry_and_version() {
        let k = key(7);
        let b = Binding { wallet_id: Uuid::now_v7(), entry_id: Uuid::nil(), version: 3 };
        let sealed = seal(&k, b, -12_345, 40);
        assert_eq!(open(&k, b, &sealed), Ok((-12_345, 40)));
        assert_eq!(open(&key(8), b, &sealed), Err(Tampered), "another shop's key");
        assert_eq!(open(&k, Binding { wallet_id: Uuid::now_v7(), ..b }, &sealed), Err(Tampered), "another wallet");
        assert_eq!(open(&k, Binding { version: 2, ..b }, &sealed), Err(Tampered), "another version");
        assert_eq!(open(&k, Binding { entry_id: Uuid::now_v7(), ..b }, &sealed), Err(Tampered), "another entry");
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(open(&k, b, &flipped), Err(Tampered), "a changed byte");
        assert_eq!(open(&k, b, &sealed[..5]), Err(Tampered), "truncated");
        assert_ne!(seal(&k, b, 1, 0), seal(&k, b, 1, 0), "a fresh nonce each time");
    }
}
