//! JWT and JWE bodies of connector calls: ZITADEL signs the JSON payload as a compact JWS with its
//! instance keys (published at `<baseUrl>/oauth/v2/keys`) and, for JWE, encrypts that JWS to the
//! public key the operator added to the target (the connection's key pair: `RSA-OAEP-256`,
//! `A256GCM`). Accepted signature algorithms: RS256/384/512 and ES256; never `none` or HMAC.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use serde_json::Value;

/// Why a compact JOSE body was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum JoseError {
    /// The JWS names a key the JWKS does not have (refetch the JWKS once, then refuse).
    UnknownKid(String),
    Invalid(String),
}

impl JoseError {
    pub fn describe(&self) -> String {
        match self {
            JoseError::UnknownKid(kid) => format!("unknown signing key id {kid:?}"),
            JoseError::Invalid(why) => why.clone(),
        }
    }
}

fn invalid(why: impl Into<String>) -> JoseError {
    JoseError::Invalid(why.into())
}

fn unb64(part: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| invalid("a part is not base64url"))
}

/// A compact JWS's protected header.
pub fn jws_header(compact: &str) -> Result<Value, JoseError> {
    let head = compact.split('.').next().unwrap_or("");
    serde_json::from_slice(&unb64(head)?).map_err(|_| invalid("the JWS header is not JSON"))
}

/// Verifies a compact JWS against the JWKS keys and returns its payload bytes.
pub fn verify_jws(compact: &str, keys: &[Value]) -> Result<Vec<u8>, JoseError> {
    let parts: Vec<&str> = compact.split('.').collect();
    let [head, body, sig] = parts.as_slice() else { return Err(invalid("a JWS has three parts")) };
    let header = jws_header(compact)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&Value> = keys
        .iter()
        .filter(|k| match kid {
            Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid),
            None => true,
        })
        .collect();
    if candidates.is_empty() {
        return Err(JoseError::UnknownKid(kid.unwrap_or("").to_string()));
    }
    let signed = format!("{head}.{body}");
    let signature = unb64(sig)?;
    let verified = candidates.iter().any(|jwk| verify_with(jwk, alg, signed.as_bytes(), &signature).unwrap_or(false));
    if !verified {
        return Err(invalid(format!("the JWS signature ({alg}) does not verify")));
    }
    unb64(body)
}

fn verify_with(jwk: &Value, alg: &str, message: &[u8], signature: &[u8]) -> Result<bool, JoseError> {
    let field =
        |name: &str| jwk.get(name).and_then(Value::as_str).ok_or_else(|| invalid(format!("JWK without {name}")));
    match (alg, jwk.get("kty").and_then(Value::as_str)) {
        ("RS256" | "RS384" | "RS512", Some("RSA")) => {
            let n = BigUint::from_bytes_be(&unb64(field("n")?)?);
            let e = BigUint::from_bytes_be(&unb64(field("e")?)?);
            let key = RsaPublicKey::new(n, e).map_err(|e| invalid(format!("bad RSA key: {e}")))?;
            let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else { return Ok(false) };
            Ok(match alg {
                "RS256" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(message, &sig).is_ok(),
                "RS384" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key).verify(message, &sig).is_ok(),
                _ => rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key).verify(message, &sig).is_ok(),
            })
        }
        ("ES256", Some("EC")) => {
            let mut point = vec![4u8];
            point.extend(unb64(field("x")?)?);
            point.extend(unb64(field("y")?)?);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).map_err(|_| invalid("bad P-256 key"))?;
            let Ok(sig) = p256::ecdsa::Signature::from_slice(signature) else { return Ok(false) };
            Ok(key.verify(message, &sig).is_ok())
        }
        _ => Ok(false),
    }
}

/// Decrypts a compact JWE (`RSA-OAEP-256`, `A256GCM`) with the connection's private key (PKCS#8
/// PEM) and returns the plaintext (ZITADEL's JWS).
pub fn decrypt_jwe(compact: &str, private_pem: &str) -> Result<Vec<u8>, JoseError> {
    let parts: Vec<&str> = compact.split('.').collect();
    let [head, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
        return Err(invalid("a JWE has five parts"));
    };
    let header: Value = serde_json::from_slice(&unb64(head)?).map_err(|_| invalid("the JWE header is not JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let enc = header.get("enc").and_then(Value::as_str).unwrap_or("");
    if alg != "RSA-OAEP-256" || enc != "A256GCM" {
        return Err(invalid(format!("unsupported JWE algorithms {alg}/{enc} (RSA-OAEP-256/A256GCM expected)")));
    }
    let private =
        RsaPrivateKey::from_pkcs8_pem(private_pem).map_err(|_| invalid("the connection's JWE key is unreadable"))?;
    let cek = private
        .decrypt(rsa::Oaep::new::<sha2::Sha256>(), &unb64(encrypted_key)?)
        .map_err(|_| invalid("the JWE key does not decrypt with the connection's key"))?;
    let iv = unb64(iv)?;
    if iv.len() != 12 || cek.len() != 32 {
        return Err(invalid("bad JWE IV or content key length"));
    }
    let mut sealed = unb64(ciphertext)?;
    sealed.extend(unb64(tag)?);
    Aes256Gcm::new_from_slice(&cek)
        .map_err(|_| invalid("bad content key"))?
        .decrypt(Nonce::from_slice(&iv), Payload { msg: &sealed, aad: head.as_bytes() })
        .map_err(|_| invalid("the JWE does not decrypt"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v2::jose::{encrypt_jwe, PublicKey, SigningKey};
    use rsa::pkcs8::EncodePrivateKey;

    #[test]
    fn jws_and_jwe_round_trip_with_actionsds_own_encoder() {
        let signer = SigningKey::generate().unwrap();
        let jwks = vec![signer.jwk()];
        let jws = signer.sign_jwt(br#"{"function":"function/preuserinfo"}"#).unwrap();
        assert_eq!(verify_jws(&jws, &jwks).unwrap(), br#"{"function":"function/preuserinfo"}"#.to_vec());
        // A tampered payload, an unknown kid, another key under the same kid.
        let mut parts: Vec<String> = jws.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"function":"function/preaccesstoken"}"#);
        assert!(matches!(verify_jws(&parts.join("."), &jwks), Err(JoseError::Invalid(_))));
        let other = SigningKey::generate().unwrap();
        assert!(matches!(verify_jws(&jws, &[other.jwk()]), Err(JoseError::UnknownKid(_))));
        let mut forged = other.jwk();
        forged["kid"] = jwks[0]["kid"].clone();
        assert!(matches!(verify_jws(&jws, &[forged]), Err(JoseError::Invalid(_))));
        // JWE to the connection's key pair.
        let pair = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let pem = pair.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
        let jwe = encrypt_jwe(&PublicKey::Rsa(pair.to_public_key()), "k1", Some("JWT"), jws.as_bytes()).unwrap();
        assert_eq!(decrypt_jwe(&jwe, &pem).unwrap(), jws.as_bytes().to_vec());
        let stranger = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let stranger_pem = stranger.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
        assert!(decrypt_jwe(&jwe, &stranger_pem).is_err());
    }
}
