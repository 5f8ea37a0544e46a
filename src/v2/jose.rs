//! JOSE for Actions v2 payloads: the instance's RS256 signing key (JWT payloads, published as
//! JWKS), target public keys (PEM `PUBLIC KEY`, RSA or EC P-256) and JWE encryption to them
//! (`RSA-OAEP-256` or `ECDH-ES+A256KW`, content encryption `A256GCM`, compact serialization).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Size of the instance signing key.
pub const SIGNING_KEY_BITS: usize = 2048;
/// Smallest RSA modulus accepted for a target public key.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted for a target public key.
pub const MAX_RSA_BITS: usize = 8192;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

/// base64url without padding (JOSE's encoding).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The instance signing key (RSA, RS256).
pub struct SigningKey {
    private: RsaPrivateKey,
    kid: String,
}

impl SigningKey {
    /// A fresh key (CPU-bound: run it off the async executor).
    pub fn generate() -> Result<Self, String> {
        let private =
            RsaPrivateKey::new(&mut OsRng, SIGNING_KEY_BITS).map_err(|e| format!("RSA key generation: {e}"))?;
        Ok(Self::from_private(private))
    }

    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, String> {
        let private = RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| format!("not a PKCS#8 RSA private key: {e}"))?;
        Ok(Self::from_private(private))
    }

    fn from_private(private: RsaPrivateKey) -> Self {
        let kid = rsa_thumbprint(&private.to_public_key());
        SigningKey { private, kid }
    }

    pub fn to_pkcs8_pem(&self) -> Result<String, String> {
        self.private.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()).map_err(|e| format!("PKCS#8 encoding: {e}"))
    }

    /// The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url), stable for the key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> RsaPublicKey {
        self.private.to_public_key()
    }

    /// The public key as a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> Result<String, String> {
        use rsa::pkcs8::EncodePublicKey;
        self.public_key().to_public_key_pem(LineEnding::LF).map_err(|e| format!("SPKI encoding: {e}"))
    }

    /// The public JWK (`kty`, `use`, `alg`, `kid`, `n`, `e`).
    pub fn jwk(&self) -> serde_json::Value {
        let public = self.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(&public.n().to_bytes_be()),
            "e": b64url(&public.e().to_bytes_be()),
        })
    }

    /// A compact JWS (RS256) with `payload` as is, header `{"alg":"RS256","kid":…,"typ":"JWT"}`.
    pub fn sign_jwt(&self, payload: &[u8]) -> Result<String, String> {
        use rsa::signature::{RandomizedSigner, SignatureEncoding};
        let header =
            serde_json::to_vec(&json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"})).map_err(|e| e.to_string())?;
        let signing_input = format!("{}.{}", b64url(&header), b64url(payload));
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(self.private.clone());
        // Randomized: blinds the private-key operation.
        let signature = signer.try_sign_with_rng(&mut OsRng, signing_input.as_bytes()).map_err(|e| e.to_string())?;
        Ok(format!("{signing_input}.{}", b64url(&signature.to_bytes())))
    }
}

/// RFC 7638 thumbprint of an RSA public key.
fn rsa_thumbprint(key: &RsaPublicKey) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical =
        format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64url(&key.e().to_bytes_be()), b64url(&key.n().to_bytes_be()));
    b64url(&Sha256::digest(canonical.as_bytes()))
}

/// A target's public key, parsed.
#[derive(Clone, Debug)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::PublicKey),
}

/// A parsed PEM `PUBLIC KEY` block.
#[derive(Clone, Debug)]
pub struct ParsedPublicKey {
    pub key: PublicKey,
    /// DER of the SubjectPublicKeyInfo.
    pub der: Vec<u8>,
}

impl ParsedPublicKey {
    /// `SHA256:` + unpadded standard base64 of SHA-256(DER).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.der)
    }
}

pub fn fingerprint(der: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(der)))
}

/// Parses one PEM `PUBLIC KEY` (SubjectPublicKeyInfo) block holding an RSA key (2048..8192 bits) or
/// an EC P-256 key. The error says why, for the client.
pub fn parse_public_key_pem(text: &str) -> Result<ParsedPublicKey, String> {
    let (label, doc) =
        spki::der::Document::from_pem(text.trim()).map_err(|_| "not a PEM PUBLIC KEY block".to_string())?;
    if label != "PUBLIC KEY" {
        return Err(format!("the PEM block is {label:?}, a \"PUBLIC KEY\" block is required"));
    }
    let der = doc.as_bytes().to_vec();
    let info = spki::SubjectPublicKeyInfoRef::try_from(der.as_slice())
        .map_err(|_| "not a valid SubjectPublicKeyInfo".to_string())?;
    let key = match info.algorithm.oid.to_string().as_str() {
        OID_RSA => {
            use rsa::pkcs1::der::Decode;
            let bad = |e: &dyn std::fmt::Display| format!("invalid RSA public key: {e}");
            let raw = rsa::pkcs1::RsaPublicKey::from_der(info.subject_public_key.raw_bytes()).map_err(|e| bad(&e))?;
            let key = RsaPublicKey::new_with_max_size(
                rsa::BigUint::from_bytes_be(raw.modulus.as_bytes()),
                rsa::BigUint::from_bytes_be(raw.public_exponent.as_bytes()),
                MAX_RSA_BITS,
            )
            .map_err(|e| bad(&e))?;
            let bits = key.n().bits();
            if bits < MIN_RSA_BITS {
                return Err(format!("the RSA key has {bits} bits, at least {MIN_RSA_BITS} are required"));
            }
            PublicKey::Rsa(key)
        }
        OID_EC => PublicKey::P256(
            p256::PublicKey::from_public_key_der(&der)
                .map_err(|_| "only EC keys on the P-256 curve are supported".to_string())?,
        ),
        other => return Err(format!("unsupported key algorithm {other} (RSA or EC P-256 required)")),
    };
    Ok(ParsedPublicKey { key, der })
}

/// base64 of the PEM text (protobuf `bytes` in JSON).
pub fn pem_to_b64(pem: &str) -> String {
    STANDARD.encode(pem.as_bytes())
}

/// ECDH-ES Concat KDF (RFC 7518 §4.6.2, NIST SP 800-56A single-step KDF with SHA-256), with
/// empty PartyUInfo/PartyVInfo (no `apu`/`apv` header).
pub fn concat_kdf(z: &[u8], algorithm_id: &str, keydatalen_bits: u32) -> Vec<u8> {
    concat_kdf_with(z, algorithm_id, b"", b"", keydatalen_bits)
}

fn concat_kdf_with(z: &[u8], algorithm_id: &str, apu: &[u8], apv: &[u8], keydatalen_bits: u32) -> Vec<u8> {
    let mut other_info = Vec::new();
    for part in [algorithm_id.as_bytes(), apu, apv] {
        other_info.extend_from_slice(&(part.len() as u32).to_be_bytes());
        other_info.extend_from_slice(part);
    }
    other_info.extend_from_slice(&keydatalen_bits.to_be_bytes()); // SuppPubInfo
    let wanted = keydatalen_bits.div_ceil(8) as usize;
    let mut out = Vec::with_capacity(wanted + 32);
    let mut counter: u32 = 1;
    while out.len() < wanted {
        let mut h = Sha256::new();
        h.update(counter.to_be_bytes());
        h.update(z);
        h.update(&other_info);
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(wanted);
    out
}

/// AES-256 key wrap (RFC 3394).
pub fn aes256_key_wrap(kek: &[u8], key: &[u8]) -> Result<Vec<u8>, String> {
    let kek = aes_kw::KekAes256::try_from(kek).map_err(|e| format!("key wrap: {e}"))?;
    kek.wrap_vec(key).map_err(|e| format!("key wrap: {e}"))
}

/// Encrypts `plaintext` to `key` as a compact JWE: `alg` `RSA-OAEP-256` (RSA) or `ECDH-ES+A256KW`
/// (P-256), `enc` `A256GCM`, with `kid` and, when given, `cty` (and then `typ` `JWT`) in the
/// protected header.
pub fn encrypt_jwe(key: &PublicKey, kid: &str, cty: Option<&str>, plaintext: &[u8]) -> Result<String, String> {
    let mut cek = [0u8; 32];
    OsRng.fill_bytes(&mut cek);
    let mut header = serde_json::Map::new();
    let encrypted_key = match key {
        PublicKey::Rsa(public) => {
            header.insert("alg".into(), "RSA-OAEP-256".into());
            public
                .encrypt(&mut OsRng, rsa::Oaep::new::<Sha256>(), &cek)
                .map_err(|e| format!("RSA-OAEP encryption: {e}"))?
        }
        PublicKey::P256(public) => {
            const ALG: &str = "ECDH-ES+A256KW";
            let ephemeral = p256::ecdh::EphemeralSecret::random(&mut OsRng);
            let shared = ephemeral.diffie_hellman(public);
            let kek = concat_kdf(shared.raw_secret_bytes().as_slice(), ALG, 256);
            let point = p256::EncodedPoint::from(ephemeral.public_key());
            let (x, y) = (point.x().ok_or("no x coordinate")?, point.y().ok_or("no y coordinate")?);
            header.insert("alg".into(), ALG.into());
            header.insert("epk".into(), json!({"kty": "EC", "crv": "P-256", "x": b64url(x), "y": b64url(y)}));
            aes256_key_wrap(&kek, &cek)?
        }
    };
    header.insert("enc".into(), "A256GCM".into());
    header.insert("kid".into(), kid.into());
    if let Some(cty) = cty {
        // A nested token is itself a JWT (an encrypted one): ZITADEL's encrypter sets both.
        header.insert("typ".into(), "JWT".into());
        header.insert("cty".into(), cty.into());
    }
    let protected = b64url(&serde_json::to_vec(&header).map_err(|e| e.to_string())?);
    let mut iv = [0u8; 12];
    OsRng.fill_bytes(&mut iv);
    let sealed = Aes256Gcm::new_from_slice(&cek)
        .map_err(|e| e.to_string())?
        .encrypt(Nonce::from_slice(&iv), Payload { msg: plaintext, aad: protected.as_bytes() })
        .map_err(|_| "A256GCM encryption failed".to_string())?;
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    Ok(format!("{protected}.{}.{}.{}.{}", b64url(&encrypted_key), b64url(&iv), b64url(ciphertext), b64url(tag)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePublicKey;
    use std::sync::OnceLock;

    fn unb64url(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).expect("base64url")
    }

    /// One RSA key for the whole module (generation is slow).
    fn signing_key() -> &'static SigningKey {
        static KEY: OnceLock<SigningKey> = OnceLock::new();
        KEY.get_or_init(|| SigningKey::generate().unwrap())
    }

    fn rsa_private() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut OsRng, 2048).unwrap())
    }

    enum Private {
        Rsa(&'static RsaPrivateKey),
        P256(p256::SecretKey),
    }

    /// The receiving side, for the tests only: compact JWE → (header, plaintext).
    fn decrypt_jwe(private: &Private, jwe: &str) -> (serde_json::Value, Vec<u8>) {
        let parts: Vec<&str> = jwe.split('.').collect();
        assert_eq!(parts.len(), 5, "compact JWE has five parts: {jwe}");
        let header: serde_json::Value = serde_json::from_slice(&unb64url(parts[0])).unwrap();
        let encrypted_key = unb64url(parts[1]);
        let cek = match private {
            Private::Rsa(k) => {
                assert_eq!(header["alg"], "RSA-OAEP-256");
                k.decrypt(rsa::Oaep::new::<Sha256>(), &encrypted_key).unwrap()
            }
            Private::P256(k) => {
                assert_eq!(header["alg"], "ECDH-ES+A256KW");
                let epk = &header["epk"];
                assert_eq!(epk["kty"], "EC");
                assert_eq!(epk["crv"], "P-256");
                let point = p256::EncodedPoint::from_affine_coordinates(
                    unb64url(epk["x"].as_str().unwrap()).as_slice().into(),
                    unb64url(epk["y"].as_str().unwrap()).as_slice().into(),
                    false,
                );
                let ephemeral = p256::PublicKey::from_sec1_bytes(point.as_bytes()).unwrap();
                let shared = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), ephemeral.as_affine());
                let kek = concat_kdf(shared.raw_secret_bytes().as_slice(), "ECDH-ES+A256KW", 256);
                aes_kw::KekAes256::try_from(kek.as_slice()).unwrap().unwrap_vec(&encrypted_key).unwrap()
            }
        };
        assert_eq!(header["enc"], "A256GCM");
        let iv = unb64url(parts[2]);
        let mut sealed = unb64url(parts[3]);
        sealed.extend_from_slice(&unb64url(parts[4]));
        let plain = Aes256Gcm::new_from_slice(&cek)
            .unwrap()
            .decrypt(Nonce::from_slice(&iv), Payload { msg: &sealed, aad: parts[0].as_bytes() })
            .expect("A256GCM decrypts with the header as AAD");
        (header, plain)
    }

    fn verify_jwt(public: &RsaPublicKey, jwt: &str) -> (serde_json::Value, Vec<u8>) {
        use rsa::signature::Verifier;
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public.clone());
        let signature = rsa::pkcs1v15::Signature::try_from(unb64url(sig).as_slice()).unwrap();
        verifier.verify(input.as_bytes(), &signature).expect("the JWT verifies");
        let (header, payload) = input.split_once('.').unwrap();
        (serde_json::from_slice(&unb64url(header)).unwrap(), unb64url(payload))
    }

    #[test]
    fn jwt_verifies_with_the_public_key() {
        let key = signing_key();
        let payload = br#"{"fullMethod":"/x","n":1}"#;
        let jwt = key.sign_jwt(payload).unwrap();
        let (header, body) = verify_jwt(&key.public_key(), &jwt);
        assert_eq!(header, json!({"alg": "RS256", "kid": key.kid(), "typ": "JWT"}));
        assert_eq!(body, payload);
        // Tampering breaks it.
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let forged = format!("{}.{}", input.replace(&b64url(payload), &b64url(b"{}")), sig);
        let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.public_key());
        let signature = rsa::pkcs1v15::Signature::try_from(unb64url(sig).as_slice()).unwrap();
        let (forged_input, _) = forged.rsplit_once('.').unwrap();
        use rsa::signature::Verifier;
        assert!(verifier.verify(forged_input.as_bytes(), &signature).is_err());
    }

    #[test]
    fn jwk_matches_the_key_and_kid_is_the_thumbprint() {
        let key = signing_key();
        let jwk = key.jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["e"], "AQAB");
        let n = rsa::BigUint::from_bytes_be(&unb64url(jwk["n"].as_str().unwrap()));
        assert_eq!(&n, key.public_key().n());
        // Round trip through PKCS#8 keeps the key and the kid.
        let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(again.kid(), key.kid());
        assert_eq!(again.jwk(), jwk);
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let key = RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&unb64url(n)),
            rsa::BigUint::from_bytes_be(&unb64url("AQAB")),
        )
        .unwrap();
        assert_eq!(rsa_thumbprint(&key), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn jwe_rsa_oaep_decrypts_back_to_the_jwt() {
        let private = rsa_private();
        let jwt = signing_key().sign_jwt(br#"{"a":"b"}"#).unwrap();
        let jwe = encrypt_jwe(&PublicKey::Rsa(private.to_public_key()), "42", Some("JWT"), jwt.as_bytes()).unwrap();
        let (header, plain) = decrypt_jwe(&Private::Rsa(private), &jwe);
        assert_eq!(header, json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "42", "typ": "JWT", "cty": "JWT"}));
        assert_eq!(plain, jwt.as_bytes());
        verify_jwt(&signing_key().public_key(), std::str::from_utf8(&plain).unwrap());
    }

    #[test]
    fn jwe_ecdh_es_decrypts_back_to_the_jwt() {
        let private = p256::SecretKey::random(&mut OsRng);
        let jwt = signing_key().sign_jwt(br#"{"a":"b"}"#).unwrap();
        let jwe = encrypt_jwe(&PublicKey::P256(private.public_key()), "7", Some("JWT"), jwt.as_bytes()).unwrap();
        let (header, plain) = decrypt_jwe(&Private::P256(private), &jwe);
        assert_eq!(header["kid"], "7");
        assert_eq!(header["cty"], "JWT");
        assert_eq!(plain, jwt.as_bytes());
        // A different recipient cannot open it.
        let other = p256::SecretKey::random(&mut OsRng);
        let result = std::panic::catch_unwind(|| decrypt_jwe(&Private::P256(other), &jwe));
        assert!(result.is_err());
    }

    #[test]
    fn concat_kdf_rfc7518_appendix_c() {
        // RFC 7518 Appendix C: Z, AlgorithmID "A128GCM", apu "Alice", apv "Bob", 128 bits.
        let z: [u8; 32] = [
            158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128,
            106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
        ];
        assert_eq!(b64url(&concat_kdf_with(&z, "A128GCM", b"Alice", b"Bob", 128)), "VqqN6vgjbSBcIijNcacQGg");
        assert_eq!(concat_kdf(&z, "ECDH-ES+A256KW", 256), concat_kdf_with(&z, "ECDH-ES+A256KW", b"", b"", 256));
        assert_eq!(concat_kdf(&z, "ECDH-ES+A256KW", 256).len(), 32);
        assert_eq!(concat_kdf(&z, "x", 512).len(), 64);
    }

    #[test]
    fn aes_key_wrap_rfc3394_vector() {
        // RFC 3394 §4.6: 256-bit KEK, 256-bit key data.
        let kek = hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F").unwrap();
        let data = hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F").unwrap();
        let wrapped = aes256_key_wrap(&kek, &data).unwrap();
        assert_eq!(
            hex::encode_upper(wrapped),
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"
        );
    }

    #[test]
    fn parses_public_keys_and_fingerprints_them() {
        let rsa_pem = rsa_private().to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let parsed = parse_public_key_pem(&rsa_pem).unwrap();
        assert!(matches!(parsed.key, PublicKey::Rsa(_)));
        let der = rsa_private().to_public_key().to_public_key_der().unwrap();
        assert_eq!(parsed.der, der.as_bytes());
        assert_eq!(parsed.fingerprint(), format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(der.as_bytes()))));
        assert!(parsed.fingerprint().starts_with("SHA256:") && !parsed.fingerprint().ends_with('='));

        let ec = p256::SecretKey::random(&mut OsRng).public_key();
        let ec_pem = ec.to_public_key_pem(LineEnding::CRLF).unwrap();
        assert!(matches!(parse_public_key_pem(&ec_pem).unwrap().key, PublicKey::P256(_)));

        // Sizes beyond the rsa crate's default limit, up to 8192 bits (a modulus need not be a real
        // product of primes to test the parser).
        let big = |bits: usize| {
            let mut n = vec![0xffu8; bits / 8];
            n[bits / 8 - 1] = 0xfb;
            let key =
                RsaPublicKey::new_with_max_size(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from(65537u32), 16384)
                    .unwrap();
            key.to_public_key_pem(LineEnding::LF).unwrap()
        };
        assert!(matches!(parse_public_key_pem(&big(6144)).unwrap().key, PublicKey::Rsa(_)));
        assert!(matches!(parse_public_key_pem(&big(8192)).unwrap().key, PublicKey::Rsa(_)));
        assert!(parse_public_key_pem(&big(8200)).is_err());

        let small = RsaPrivateKey::new(&mut OsRng, 1024).unwrap().to_public_key().to_public_key_pem(LineEnding::LF);
        for bad in [
            String::new(),
            "hello".into(),
            rsa_pem.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
            rsa_pem.replace("PUBLIC KEY", "PRIVATE KEY"),
            rsa_pem[..rsa_pem.len() / 2].to_string(),
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
            small.unwrap(),
        ] {
            assert!(parse_public_key_pem(&bad).is_err(), "{bad:?}");
        }
    }
}
