//! Encryption at rest for secrets the server must read back (target signing keys):
//! AES-256-GCM with key = SHA-256(`ACTIONSD_ENCRYPTION_KEY`), a random 12-byte nonce per value,
//! stored as `v1:` + base64(nonce || ciphertext || tag).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

fn cipher(key: &str) -> Aes256Gcm {
    let digest = Sha256::digest(key.as_bytes());
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&digest))
}

/// Encrypts `plain` with the configured encryption key.
pub fn encrypt(key: &str, plain: &str) -> Result<String, String> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher(key)
        .encrypt(Nonce::from_slice(&nonce), plain.as_bytes())
        .map_err(|_| "encryption failed".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(out)))
}

/// Decrypts a value written by [`encrypt`]; fails on a wrong key or tampered data.
pub fn decrypt(key: &str, stored: &str) -> Result<String, String> {
    let encoded = stored.strip_prefix(PREFIX).ok_or("unknown ciphertext format")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| "ciphertext is not base64")?;
    if raw.len() < NONCE_LEN + 16 {
        return Err("ciphertext too short".into());
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let plain = cipher(key)
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| "decryption failed (wrong ACTIONSD_ENCRYPTION_KEY or corrupted value)".to_string())?;
    String::from_utf8(plain).map_err(|_| "decrypted value is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let stored = encrypt("k1", "secret-signing-key").unwrap();
        assert!(stored.starts_with("v1:"));
        assert!(!stored.contains("secret-signing-key"));
        assert_eq!(decrypt("k1", &stored).unwrap(), "secret-signing-key");
    }

    #[test]
    fn nonce_is_random() {
        assert_ne!(encrypt("k1", "same").unwrap(), encrypt("k1", "same").unwrap());
    }

    #[test]
    fn wrong_key_or_tampering_fails() {
        let stored = encrypt("k1", "secret").unwrap();
        assert!(decrypt("k2", &stored).is_err());
        let raw = base64::engine::general_purpose::STANDARD.decode(&stored[3..]).unwrap();
        let mut bad = raw.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let tampered = format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(bad));
        assert!(decrypt("k1", &tampered).is_err());
        assert!(decrypt("k1", "plain").is_err());
        assert!(decrypt("k1", "v1:AAAA").is_err());
        assert!(decrypt("k1", "v1:!!").is_err());
    }
}
