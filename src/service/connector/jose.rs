//! JWT and JWE bodies of connector calls: ZITADEL signs the JSON payload as a compact JWS with its
//! instance keys (published at `<baseUrl>/oauth/v2/keys`) and, for JWE, encrypts that JWS to the
//! public key the operator added to the target (the connection's key pair: `RSA-OAEP-256`,
//! `A256GCM`). Accepted signature algorithms: those of ZITADEL's web keys, RS256/384/512,
//! ES256/384/512 and EdDSA (Ed25519); never `none` or HMAC.

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
        ("ES256" | "ES384" | "ES512", Some("EC")) => {
            // JWS signatures are r || s; the curve follows from the algorithm (RFC 7518 §3.4), and
            // a key that names another curve never verifies.
            let point = ec_point(field("x")?, field("y")?)?;
            macro_rules! ecdsa {
                ($curve:ident, $name:literal) => {{
                    let key = $curve::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                        .map_err(|_| invalid(concat!("bad ", $name, " key")))?;
                    $curve::ecdsa::Signature::from_slice(signature).is_ok_and(|sig| key.verify(message, &sig).is_ok())
                }};
            }
            Ok(match (alg, jwk.get("crv").and_then(Value::as_str)) {
                ("ES256", Some("P-256") | None) => ecdsa!(p256, "P-256"),
                ("ES384", Some("P-384") | None) => ecdsa!(p384, "P-384"),
                ("ES512", Some("P-521") | None) => ecdsa!(p521, "P-521"),
                _ => false,
            })
        }
        ("EdDSA", Some("OKP")) => {
            if field("crv")? != "Ed25519" {
                return Ok(false);
            }
            let x: [u8; 32] = unb64(field("x")?)?.try_into().map_err(|_| invalid("bad Ed25519 key"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| invalid("bad Ed25519 key"))?;
            let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else { return Ok(false) };
            Ok(key.verify_strict(message, &sig).is_ok())
        }
        _ => Ok(false),
    }
}

/// An uncompressed SEC1 point from a JWK's `x` and `y`.
fn ec_point(x: &str, y: &str) -> Result<Vec<u8>, JoseError> {
    let mut point = vec![4u8];
    point.extend(unb64(x)?);
    point.extend(unb64(y)?);
    Ok(point)
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

    /// A compact JWS over `payload` with `alg`, signed by `sign`.
    fn jws(alg: &str, kid: &str, payload: &[u8], sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let head = URL_SAFE_NO_PAD.encode(serde_json::json!({"alg": alg, "kid": kid}).to_string());
        let input = format!("{head}.{}", URL_SAFE_NO_PAD.encode(payload));
        let sig = URL_SAFE_NO_PAD.encode(sign(input.as_bytes()));
        format!("{input}.{sig}")
    }

    fn ec_jwk(kid: &str, crv: &str, sec1: &[u8]) -> Value {
        let half = (sec1.len() - 1) / 2;
        serde_json::json!({"kty": "EC", "crv": crv, "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&sec1[1..1 + half]), "y": URL_SAFE_NO_PAD.encode(&sec1[1 + half..])})
    }

    #[test]
    fn every_web_key_algorithm_of_zitadel_verifies() {
        use rsa::signature::{RandomizedSigner, Signer};
        let payload = br#"{"function":"function/preuserinfo"}"#;
        let p256 = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let p384 = p384::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let p521 = p521::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
        let ed = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let cases = [
            (
                jws("ES256", "k256", payload, |m| {
                    let s: p256::ecdsa::Signature = p256.sign(m);
                    s.to_vec()
                }),
                ec_jwk("k256", "P-256", p256.verifying_key().to_encoded_point(false).as_bytes()),
            ),
            (
                jws("ES384", "k384", payload, |m| {
                    let s: p384::ecdsa::Signature = p384.sign(m);
                    s.to_vec()
                }),
                ec_jwk("k384", "P-384", p384.verifying_key().to_encoded_point(false).as_bytes()),
            ),
            (
                jws("ES512", "k521", payload, |m| {
                    let s: p521::ecdsa::Signature = p521.sign_with_rng(&mut rand::rngs::OsRng, m);
                    s.to_vec()
                }),
                ec_jwk("k521", "P-521", p521::ecdsa::VerifyingKey::from(&p521).to_encoded_point(false).as_bytes()),
            ),
            (
                jws("EdDSA", "ked", payload, |m| ed.sign(m).to_bytes().to_vec()),
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "ked",
                    "x": URL_SAFE_NO_PAD.encode(ed.verifying_key().as_bytes())}),
            ),
        ];
        let jwks: Vec<Value> = cases.iter().map(|(_, jwk)| jwk.clone()).collect();
        for (compact, jwk) in &cases {
            assert_eq!(verify_jws(compact, &jwks).unwrap(), payload.to_vec(), "{jwk}");
            // Tampered: one byte of the payload changed.
            let mut parts: Vec<String> = compact.split('.').map(str::to_string).collect();
            parts[1] = URL_SAFE_NO_PAD.encode(br#"{"function":"function/preaccesstoken"}"#);
            assert!(matches!(verify_jws(&parts.join("."), &jwks), Err(JoseError::Invalid(_))), "{jwk}");
            // The same kid naming a key of another curve or type never verifies.
            for other in jwks.iter().filter(|k| *k != jwk) {
                let mut swapped = other.clone();
                swapped["kid"] = jwk["kid"].clone();
                assert!(verify_jws(compact, &[swapped]).is_err(), "{jwk} with {other}");
            }
        }
    }
}
