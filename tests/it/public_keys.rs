//! Actions v2 target public keys (README, "Actions v2"), signing-key rotation with a
//! grace period, the instance JWKS (`GET /oauth/v2/keys`) and JWT/JWE payload encoding.

use crate::common;

use actionsd::v2::payload;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{assert_error, webhook_target as webhook, TestServer};
use reqwest::Method;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

const TARGETS: &str = "/v2/actions/targets";
const SVC: &str = "zitadel.action.v2.ActionService";

const P384_PEM: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEOeYfiR9HG76zArAemwlUfs/FgxWxlR/j
PUCPJ+eWHHkZO1WL8FOmUPUQDCfxmT1mR5wrpFXSPT9ypHsAgacuAQps9uiJnpPq
eqmRSXEUhlUQFqa/4tbdjHEDsQ8Amsqt
-----END PUBLIC KEY-----
";
const ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEARq8qx/rg1ngbuspMScjXQyFTJWIj+GCfPl2ZNiGPW+E=
-----END PUBLIC KEY-----
";
const RSA1024_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDdkm9iEHAxKdvySxUMh+fEcmS5
H2drl5dOd3WPPvRaAFtXM5qEJCLnd2Wk/EtijxCvAL5QbETkt+MJzgK0i//JCpEr
y3HroLkmRZFQPcElhNYx/yDju3H/72bN/kSqupUhn5kim3e7Eo0YD3a2Zdo/BqS7
POyfp80Z1UyB8TSdOQIDAQAB
-----END PUBLIC KEY-----
";

/// One RSA test key for the whole binary (generation is slow).
fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).expect("RSA key"))
}

fn rsa_pem() -> String {
    rsa_key().to_public_key().to_public_key_pem(LineEnding::LF).unwrap()
}

fn ec_key() -> p256::SecretKey {
    p256::SecretKey::random(&mut rand::rngs::OsRng)
}

fn ec_pem(k: &p256::SecretKey) -> String {
    k.public_key().to_public_key_pem(LineEnding::LF).unwrap()
}

/// The fingerprint computed here, independently of the server: SHA-256 over the DER the key
/// crate encodes, standard base64 without padding.
fn expected_fingerprint(der: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(der)))
}

fn b64(text: &str) -> String {
    STANDARD.encode(text.as_bytes())
}

fn unb64url(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap_or_else(|e| panic!("base64url {s:?}: {e}"))
}

fn keys_path(target: &str) -> String {
    format!("{TARGETS}/{target}/publickeys")
}

fn key_path(target: &str, key: &str) -> String {
    format!("{TARGETS}/{target}/publickeys/{key}")
}

async fn create_target(s: &TestServer, body: Value) -> String {
    let r = s.post(TARGETS, &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["id"].as_str().expect("id").to_string()
}

async fn add_key(s: &TestServer, target: &str, body: Value) -> String {
    let r = s.post(&keys_path(target), &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["creationDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{r:?}");
    r.body["keyId"].as_str().expect("keyId").to_string()
}

async fn list_keys(s: &TestServer, target: &str) -> Vec<Value> {
    let r = s.post(&format!("{}/search", keys_path(target)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["publicKeys"].as_array().cloned().unwrap_or_default()
}

fn by_id<'a>(keys: &'a [Value], id: &str) -> &'a Value {
    keys.iter().find(|k| k["keyId"] == id).unwrap_or_else(|| panic!("key {id} not listed: {keys:?}"))
}

async fn target_row(s: &TestServer, id: &str) -> entity::target::Model {
    entity::target::Entity::find_by_id(id.parse::<i64>().unwrap())
        .one(&s.state.store.db)
        .await
        .unwrap()
        .expect("target row")
}

async fn event_types(s: &TestServer, id: &str) -> Vec<(String, String)> {
    use sea_orm::QueryOrder;
    entity::event::Entity::find()
        .filter(entity::event::Column::AggregateType.eq("target"))
        .filter(entity::event::Column::AggregateId.eq(id))
        .order_by_asc(entity::event::Column::Sequence)
        .all(&s.state.store.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event_type, e.payload))
        .collect()
}

fn encryption_key(s: &TestServer) -> String {
    s.state.config.encryption_key.clone().expect("encryption key")
}

async fn key_lifecycle(s: &TestServer) {
    let target = create_target(s, webhook("keys")).await;
    assert!(list_keys(s, &target).await.is_empty());
    let r = s.post(&format!("{}/search", keys_path(&target)), &s.admin, json!({})).await;
    assert_eq!(r.body, json!({}), "no keys: an empty message");

    // RSA, with an expiration; EC P-256 without.
    let rsa_pem = rsa_pem();
    let rsa_der = rsa_key().to_public_key().to_public_key_der().unwrap();
    let ec = ec_key();
    let ec_pem = ec_pem(&ec);
    let ec_der = ec.public_key().to_public_key_der().unwrap();
    let rsa_id =
        add_key(s, &target, json!({"publicKey": b64(&rsa_pem), "expirationDate": "2099-01-02T03:04:05Z"})).await;
    let ec_id = add_key(s, &target, json!({"public_key": b64(&ec_pem)})).await;
    assert!(rsa_id.parse::<u64>().is_ok() && ec_id.parse::<u64>().is_ok(), "{rsa_id} {ec_id}");
    assert_ne!(rsa_id, ec_id);

    let keys = list_keys(s, &target).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["keyId"], rsa_id.as_str(), "oldest first");
    let k = by_id(&keys, &rsa_id);
    assert!(k.get("active").is_none(), "new keys are inactive (false is omitted): {k}");
    assert_eq!(k["fingerprint"], expected_fingerprint(rsa_der.as_bytes()));
    assert_eq!(k["publicKey"], b64(&rsa_pem));
    assert_eq!(k["expirationDate"], "2099-01-02T03:04:05Z");
    assert!(k["creationDate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(k["changeDate"], k["creationDate"]);
    let k = by_id(&keys, &ec_id);
    assert_eq!(k["fingerprint"], expected_fingerprint(ec_der.as_bytes()));
    assert!(!k["fingerprint"].as_str().unwrap().ends_with('='), "{k}");
    assert!(k.get("expirationDate").is_none(), "{k}");
    assert!(k.get("active").is_none(), "{k}");

    // Activate RSA, then EC: EC's activation deactivates RSA.
    let r = s.post(&format!("{}/activate", key_path(&target, &rsa_id)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let activated_at = r.body["changeDate"].as_str().expect("changeDate").to_string();
    let keys = list_keys(s, &target).await;
    assert_eq!(by_id(&keys, &rsa_id)["active"], true);
    assert_eq!(by_id(&keys, &rsa_id)["changeDate"], activated_at.as_str());
    assert!(by_id(&keys, &ec_id).get("active").is_none());
    // Activating the active key again changes nothing.
    let r = s.post(&format!("{}/activate", key_path(&target, &rsa_id)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["changeDate"], activated_at.as_str());

    let r = s.post(&format!("{}/activate", key_path(&target, &ec_id)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let keys = list_keys(s, &target).await;
    assert_eq!(by_id(&keys, &ec_id)["active"], true);
    assert!(by_id(&keys, &rsa_id).get("active").is_none(), "the previous active key was deactivated: {keys:?}");
    assert_eq!(keys.iter().filter(|k| k["active"] == true).count(), 1);

    // The active key cannot be removed.
    let r = s.delete(&key_path(&target, &ec_id), &s.admin).await;
    assert_error(&r, 400, 9, "Errors.Target.PublicKeyActive", "remove the active key");
    assert_eq!(list_keys(s, &target).await.len(), 2);

    // Deactivate, then remove; removing again is idempotent.
    let r = s.post(&format!("{}/deactivate", key_path(&target, &ec_id)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let deactivated_at = r.body["changeDate"].as_str().expect("changeDate").to_string();
    let r = s.post(&format!("{}/deactivate", key_path(&target, &ec_id)), &s.admin, json!({})).await;
    assert_eq!(r.body["changeDate"], deactivated_at.as_str(), "deactivating an inactive key changes nothing");
    let keys = list_keys(s, &target).await;
    assert!(keys.iter().all(|k| k.get("active").is_none()), "{keys:?}");
    let r = s.delete(&key_path(&target, &ec_id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["deletionDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{r:?}");
    let r = s.delete(&key_path(&target, &ec_id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({}), "an unknown key id: no deletionDate");
    let keys = list_keys(s, &target).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["keyId"], rsa_id.as_str());

    // One event per change, on the target aggregate, without key material.
    let events = event_types(s, &target).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "target.added",
            "target.key.added",
            "target.key.added",
            "target.key.activated",
            "target.key.deactivated",
            "target.key.activated",
            "target.key.deactivated",
            "target.key.removed",
        ]
    );
    for (_, payload) in &events[1..] {
        let p: Value = serde_json::from_str(payload).unwrap();
        assert!(p["keyId"].is_string(), "{payload}");
        assert!(!payload.contains("PUBLIC KEY"), "{payload}");
    }
    let row = target_row(s, &target).await;
    assert_eq!(row.sequence, events.len() as i64, "the target's sequence follows its events");
}

/// ListPublicKeys' filters (ZITADEL's PublicKeySearchFilter): key ids, the active key, the
/// expiration date by each method; combined with AND; a key without an expiration date matches no
/// expiration filter; a filter entry must set exactly one, and its timestamp must be one.
async fn list_filters(s: &TestServer) {
    let target = create_target(s, webhook("filtered")).await;
    let a = add_key(s, &target, json!({"publicKey": b64(&ec_pem(&ec_key()))})).await;
    let b =
        add_key(s, &target, json!({"publicKey": b64(&ec_pem(&ec_key())), "expirationDate": "2099-01-02T03:04:05Z"}))
            .await;
    let c =
        add_key(s, &target, json!({"publicKey": b64(&ec_pem(&ec_key())), "expirationDate": "2098-01-01T00:00:00Z"}))
            .await;
    let r = s.post(&format!("{}/activate", key_path(&target, &b)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let search = |filters: Value| {
        let path = format!("{}/search", keys_path(&target));
        async move {
            let r = s.post(&path, &s.admin, json!({"filters": filters})).await;
            assert_eq!(r.status, 200, "{r:?}");
            let keys = r.body["publicKeys"].as_array().cloned().unwrap_or_default();
            keys.iter().map(|k| k["keyId"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>()
        }
    };
    let at = |method: &str, when: &str| json!({"expirationDateFilter": {"timestamp": when, "method": method}});
    assert_eq!(search(json!([{"activeFilter": true}])).await, vec![b.clone()]);
    assert_eq!(search(json!([{"activeFilter": false}])).await, [a.clone(), c.clone()]);
    assert_eq!(search(json!([{"keyIdsFilter": {"ids": [a, c, "1"]}}])).await, [a.clone(), c.clone()]);
    let b_expires = "2099-01-02T03:04:05Z";
    assert_eq!(search(json!([at("TIMESTAMP_FILTER_METHOD_EQUALS", b_expires)])).await, vec![b.clone()]);
    assert_eq!(search(json!([at("TIMESTAMP_FILTER_METHOD_AFTER", b_expires)])).await, Vec::<String>::new());
    assert_eq!(search(json!([at("TIMESTAMP_FILTER_METHOD_AFTER_OR_EQUALS", b_expires)])).await, vec![b.clone()]);
    assert_eq!(search(json!([at("TIMESTAMP_FILTER_METHOD_BEFORE", b_expires)])).await, vec![c.clone()]);
    assert_eq!(
        search(json!([at("TIMESTAMP_FILTER_METHOD_BEFORE_OR_EQUALS", b_expires)])).await,
        [b.clone(), c.clone()]
    );
    // Numbers for the method, as protobuf's JSON reader takes them; filters are ANDed.
    let both =
        json!([{"activeFilter": false}, {"expirationDateFilter": {"timestamp": "2100-01-01T00:00:00Z", "method": 3}}]);
    assert_eq!(search(both).await, vec![c.clone()]);
    for (filters, field) in [
        (json!([{"activeFilter": true, "keyIdsFilter": {"ids": [a]}}]), "Filters[0]"),
        (json!([{}]), "Filters[0]"),
        (
            json!([{"activeFilter": true}, at("TIMESTAMP_FILTER_METHOD_EQUALS", "x")]),
            "Filters[1].ExpirationDateFilter.Timestamp",
        ),
    ] {
        let r = s.post(&format!("{}/search", keys_path(&target)), &s.admin, json!({"filters": filters})).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{filters}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains(field), "{filters}: {r:?}");
    }
}

async fn public_key_validation(s: &TestServer) {
    let target = create_target(s, webhook("validation")).await;
    let rsa_pem = rsa_pem();
    let mut oversized = rsa_pem.clone();
    oversized.push_str(&"\n".repeat(8193 - oversized.len()));
    assert_eq!(oversized.len(), 8193);
    let bad: Vec<(&str, Value)> = vec![
        ("missing", json!({})),
        ("empty", json!({"publicKey": ""})),
        ("not base64", json!({"publicKey": "%%% not base64 %%%"})),
        ("base64 of non-PEM", json!({"publicKey": b64("hello world")})),
        ("over 8192 bytes", json!({"publicKey": b64(&oversized)})),
        ("PKCS#1 label", json!({"publicKey": b64(&rsa_pem.replace("PUBLIC KEY", "RSA PUBLIC KEY"))})),
        ("private key label", json!({"publicKey": b64(&rsa_pem.replace("PUBLIC KEY", "PRIVATE KEY"))})),
        ("truncated", json!({"publicKey": b64(&rsa_pem[..rsa_pem.len() / 2])})),
        ("garbage DER", json!({"publicKey": b64("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")})),
        ("EC P-384", json!({"publicKey": b64(P384_PEM)})),
        ("Ed25519", json!({"publicKey": b64(ED25519_PEM)})),
        ("RSA 1024", json!({"publicKey": b64(RSA1024_PEM)})),
        ("expired", json!({"publicKey": b64(&rsa_pem), "expirationDate": "2020-01-01T00:00:00Z"})),
        ("not a timestamp", json!({"publicKey": b64(&rsa_pem), "expirationDate": "tomorrow"})),
        ("year 10000 in UTC", json!({"publicKey": b64(&rsa_pem), "expirationDate": "9999-12-31T23:59:59-01:00"})),
    ];
    for (what, body) in bad {
        let r = s.post(&keys_path(&target), &s.admin, body).await;
        assert_error(&r, 400, 3, "Errors.Target.InvalidPublicKey", what);
    }
    assert!(list_keys(s, &target).await.is_empty(), "nothing was added");
    assert_eq!(event_types(s, &target).await.len(), 1, "no events for refused keys");

    // Exactly 8192 bytes is fine; so are URL-safe and unpadded base64 and the PEM text itself.
    let mut largest = rsa_pem.clone();
    largest.push_str(&"\n".repeat(8192 - largest.len()));
    add_key(s, &target, json!({"publicKey": b64(&largest)})).await;
    add_key(s, &target, json!({"publicKey": URL_SAFE_NO_PAD.encode(rsa_pem.as_bytes())})).await;
    add_key(s, &target, json!({"publicKey": rsa_pem})).await;
    let keys = list_keys(s, &target).await;
    assert_eq!(keys.len(), 3);
    let der = rsa_key().to_public_key().to_public_key_der().unwrap();
    assert!(keys.iter().all(|k| k["fingerprint"] == expected_fingerprint(der.as_bytes())), "{keys:?}");

    // Unknown targets and keys.
    let key = keys[0]["keyId"].as_str().unwrap().to_string();
    for missing in ["123456789", "not-an-id"] {
        let r = s.post(&keys_path(missing), &s.admin, json!({"publicKey": b64(&rsa_pem)})).await;
        assert_error(&r, 404, 5, "Errors.Target.NotFound", &format!("add to {missing}"));
        let r = s.post(&format!("{}/search", keys_path(missing)), &s.admin, json!({})).await;
        assert_error(&r, 404, 5, "Errors.Target.NotFound", &format!("list {missing}"));
        for action in ["activate", "deactivate"] {
            let r = s.post(&format!("{}/{action}", key_path(missing, &key)), &s.admin, json!({})).await;
            assert_error(&r, 404, 5, "Errors.Target.NotFound", &format!("{action} on target {missing}"));
            let r = s.post(&format!("{}/{action}", key_path(&target, missing)), &s.admin, json!({})).await;
            assert_error(&r, 404, 5, "Errors.Target.NotFound", &format!("{action} key {missing}"));
        }
        let r = s.delete(&key_path(missing, &key), &s.admin).await;
        assert_error(&r, 404, 5, "Errors.Target.NotFound", &format!("remove on target {missing}"));
        let r = s.delete(&key_path(&target, missing), &s.admin).await;
        assert_eq!(r.status, 200, "remove an unknown key is idempotent: {r:?}");
        assert_eq!(r.body, json!({}));
    }
    // A key of another target is unknown here.
    let other = create_target(s, webhook("validation-other")).await;
    let r = s.post(&format!("{}/activate", key_path(&other, &key)), &s.admin, json!({})).await;
    assert_error(&r, 404, 5, "Errors.Target.NotFound", "key of another target");
    let r = s.delete(&key_path(&other, &key), &s.admin).await;
    assert_eq!(r.body, json!({}), "{r:?}");
    assert_eq!(list_keys(s, &target).await.len(), 3, "the other target's call removed nothing");
}

async fn connect_transport(s: &TestServer) {
    let target = create_target(s, webhook("connect-keys")).await;
    let ec = ec_key();
    let r = s
        .connect(&format!("{SVC}/AddPublicKey"), &s.admin, json!({"targetId": target, "publicKey": b64(&ec_pem(&ec))}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let key = r.body["keyId"].as_str().unwrap().to_string();
    let ids = json!({"targetId": target, "keyId": key});
    let r = s.connect(&format!("{SVC}/ActivatePublicKey"), &s.admin, ids.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["changeDate"].is_string(), "{r:?}");
    let r = s.connect(&format!("{SVC}/ListPublicKeys"), &s.admin, json!({"target_id": target})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["publicKeys"][0]["keyId"], key.as_str());
    assert_eq!(r.body["publicKeys"][0]["active"], true);
    let r = s.connect(&format!("{SVC}/RemovePublicKey"), &s.admin, ids.clone()).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "failed_precondition", "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("Errors.Target.PublicKeyActive"), "{r:?}");
    let r = s.connect(&format!("{SVC}/DeactivatePublicKey"), &s.admin, ids.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.connect(&format!("{SVC}/RemovePublicKey"), &s.admin, ids.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["deletionDate"].is_string(), "{r:?}");
    let r = s.connect(&format!("{SVC}/ListPublicKeys"), &s.admin, json!({"targetId": target})).await;
    assert_eq!(r.body, json!({}), "{r:?}");

    let r = s.connect(&format!("{SVC}/AddPublicKey"), &s.admin, json!({"targetId": target, "publicKey": "x"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "invalid_argument", "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("Errors.Target.InvalidPublicKey"), "{r:?}");
    let r = s.connect(&format!("{SVC}/ActivatePublicKey"), &s.admin, json!({"targetId": target, "keyId": "1"})).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body["code"], "not_found", "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("Errors.Target.NotFound"), "{r:?}");
}

async fn only_iam_owner(s: &TestServer) {
    let target = create_target(s, webhook("perm-keys")).await;
    let key = add_key(s, &target, json!({"publicKey": b64(&ec_pem(&ec_key()))})).await;
    let org = s.create_org("keys-perm").await;
    let body = json!({"publicKey": b64(&ec_pem(&ec_key()))});
    let calls: Vec<(Method, String, Option<Value>, &str)> = vec![
        (Method::POST, keys_path(&target), Some(body.clone()), "AddPublicKey"),
        (Method::POST, format!("{}/activate", key_path(&target, &key)), Some(json!({})), "ActivatePublicKey"),
        (Method::POST, format!("{}/deactivate", key_path(&target, &key)), Some(json!({})), "DeactivatePublicKey"),
        (Method::DELETE, key_path(&target, &key), None, "RemovePublicKey"),
        (Method::POST, format!("{}/search", keys_path(&target)), Some(json!({})), "ListPublicKeys"),
    ];
    for role in ["ORG_OWNER", "ORG_VIEWER", "ORG_EXECUTOR"] {
        let token = s.create_token(&org, role).await;
        for (method, path, body, rpc) in &calls {
            let r = s.call(method.clone(), path, Some(&token), &[], body.clone()).await;
            assert_error(&r, 403, 7, "AUTH-5mWD2", &format!("{role} {method} {path}"));
            let r = s.connect(&format!("{SVC}/{rpc}"), &token, json!({"targetId": target, "keyId": key})).await;
            assert_eq!(r.status, 403, "{role} {rpc}: {r:?}");
            assert_eq!(r.body["code"], "permission_denied", "{r:?}");
        }
    }
    for (method, path, body, _) in &calls {
        let r = s.call(method.clone(), path, None, &[], body.clone()).await;
        assert_eq!(r.status, 401, "{method} {path}: {r:?}");
    }
    let keys = list_keys(s, &target).await;
    assert_eq!(keys.len(), 1, "nothing changed");
    assert!(keys[0].get("active").is_none());
}

async fn deleting_a_target_removes_its_keys(s: &TestServer) {
    let target = create_target(s, webhook("doomed")).await;
    let key = add_key(s, &target, json!({"publicKey": b64(&rsa_pem())})).await;
    let r = s.post(&format!("{}/activate", key_path(&target, &key)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.delete(&format!("{TARGETS}/{target}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let left = entity::target_key::Entity::find()
        .filter(entity::target_key::Column::TargetId.eq(target.parse::<i64>().unwrap()))
        .count(&s.state.store.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let r = s.post(&format!("{}/search", keys_path(&target)), &s.admin, json!({})).await;
    assert_error(&r, 404, 5, "Errors.Target.NotFound", "keys of a deleted target");
}

async fn signing_key_rotation_grace_period(s: &TestServer) {
    let enc = encryption_key(s);
    let r = s.post(TARGETS, &s.admin, webhook("rotate")).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let first = r.body["signingKey"].as_str().unwrap().to_string();
    let now = actionsd::domain::time::now_micros();
    assert_eq!(payload::signing_keys(&enc, &target_row(s, &id).await, now).unwrap(), [first.as_str()]);

    // d > 0: the old key stays valid for d.
    let r = s.post(&format!("{TARGETS}/{id}"), &s.admin, json!({"expirationSigningKey": "3600s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let second = r.body["signingKey"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let row = target_row(s, &id).await;
    let now = actionsd::domain::time::now_micros();
    assert_eq!(payload::signing_keys(&enc, &row, now).unwrap(), [second.clone(), first.clone()]);
    let until = row.previous_key_expires_at.expect("grace period end");
    assert!((until - now - 3_600_000_000).abs() < 60_000_000, "about an hour: {until} vs {now}");
    assert_eq!(payload::signing_keys(&enc, &row, until - 1).unwrap().len(), 2);
    assert_eq!(payload::signing_keys(&enc, &row, until).unwrap(), [second.as_str()], "expired at the end");
    let stored = row.previous_key_enc.clone().expect("previous key stored");
    assert!(!stored.contains(&first), "the previous key is encrypted at rest");
    assert_eq!(s.get(&format!("{TARGETS}/{id}"), &s.admin).await.body["target"]["signingKey"], second.as_str());

    // "0s": rotates and drops the previous key at once.
    let r = s.post(&format!("{TARGETS}/{id}"), &s.admin, json!({"expirationSigningKey": "0s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let third = r.body["signingKey"].as_str().unwrap().to_string();
    let row = target_row(s, &id).await;
    assert_eq!(payload::signing_keys(&enc, &row, actionsd::domain::time::now_micros()).unwrap(), [third.as_str()]);
    assert!(row.previous_key_enc.is_none() && row.previous_key_expires_at.is_none(), "{row:?}");

    // A short grace: valid now, not after it (checked with a later `now` instead of sleeping).
    let r = s.post(&format!("{TARGETS}/{id}"), &s.admin, json!({"expiration_signing_key": "1.5s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let fourth = r.body["signingKey"].as_str().unwrap().to_string();
    let row = target_row(s, &id).await;
    let now = actionsd::domain::time::now_micros();
    assert_eq!(payload::signing_keys(&enc, &row, now).unwrap(), [fourth.clone(), third.clone()]);
    assert_eq!(payload::signing_keys(&enc, &row, now + 2_000_000).unwrap(), [fourth.as_str()]);

    // Rotating again during a grace period keeps every replaced key for its own grace period,
    // most recently replaced first.
    let r = s.post(&format!("{TARGETS}/{id}"), &s.admin, json!({"expirationSigningKey": "60s"})).await;
    let fifth = r.body["signingKey"].as_str().unwrap().to_string();
    let row = target_row(s, &id).await;
    let now = actionsd::domain::time::now_micros();
    assert_eq!(payload::signing_keys(&enc, &row, now + 2_000_000).unwrap(), [fifth.clone(), fourth.clone()]);
    let r = s.post(&format!("{TARGETS}/{id}"), &s.admin, json!({"expirationSigningKey": "3600s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let sixth = r.body["signingKey"].as_str().unwrap().to_string();
    let row = target_row(s, &id).await;
    let now = actionsd::domain::time::now_micros();
    assert_eq!(payload::signing_keys(&enc, &row, now + 2_000_000).unwrap(), [sixth.clone(), fifth.clone(), fourth]);
    assert_eq!(payload::signing_keys(&enc, &row, now + 61_000_000).unwrap(), [sixth.clone(), fifth.clone()]);
    assert_eq!(payload::signing_keys(&enc, &row, now + 3_601_000_000).unwrap(), [sixth.as_str()]);
    let stored = row.previous_key_enc.clone().expect("previous keys stored");
    assert!(!stored.contains(&fifth), "the previous keys are encrypted at rest");
    // A row written when one previous key was kept (a bare sealed key) still reads.
    let mut legacy = row.clone();
    legacy.previous_key_enc = Some(actionsd::store::crypto::encrypt(&enc, &fifth).unwrap());
    legacy.previous_key_expires_at = Some(now + 10_000_000);
    assert_eq!(payload::signing_keys(&enc, &legacy, now).unwrap(), [sixth.clone(), fifth.clone()]);
    assert_eq!(payload::signing_keys(&enc, &legacy, now + 10_000_000).unwrap(), [sixth.as_str()]);
    // At most MAX_PREVIOUS_KEYS replaced keys are kept.
    let mut last = sixth;
    for _ in 0..actionsd::store::targets::MAX_PREVIOUS_KEYS + 2 {
        let r = s.post(&format!("{TARGETS}/{id}"), &s.admin, json!({"expirationSigningKey": "3600s"})).await;
        last = r.body["signingKey"].as_str().unwrap().to_string();
    }
    let row = target_row(s, &id).await;
    let keys = payload::signing_keys(&enc, &row, actionsd::domain::time::now_micros()).unwrap();
    assert_eq!(keys.len(), 1 + actionsd::store::targets::MAX_PREVIOUS_KEYS, "{keys:?}");
    assert_eq!(keys[0], last);

    // Negative or malformed durations are refused and change nothing.
    let before = target_row(s, &id).await;
    for (value, key) in
        [("-1s", Some("Errors.Target.Invalid")), ("1m", None), ("3600", None), ("abc", None), ("+2s", None)]
    {
        let r = s.post(&format!("{TARGETS}/{id}"), &s.admin, json!({"expirationSigningKey": value})).await;
        assert_eq!(r.status, 400, "{value}: {r:?}");
        assert_eq!(r.code(), 3, "{value}: {r:?}");
        if let Some(key) = key {
            assert_eq!(r.error_id(), key, "{value}: {r:?}");
        }
        assert!(r.body["message"].as_str().unwrap().contains("ExpirationSigningKey"), "{value}: {r:?}");
    }
    assert_eq!(target_row(s, &id).await, before);

    // Every rotation is a target.changed event; no key, in clear or encrypted, in any payload.
    let events = event_types(s, &id).await;
    let rotations = 6 + actionsd::store::targets::MAX_PREVIOUS_KEYS + 2;
    assert_eq!(events.iter().filter(|(t, _)| t == "target.changed").count(), rotations - 1);
    let secrets = [&first, &second, &third, &fifth, &last];
    for (_, payload) in &events {
        for secret in secrets {
            assert!(!payload.contains(secret.as_str()), "{payload}");
        }
        assert!(!payload.contains("v1:"), "{payload}");
    }
    let rotated: Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(rotated["signingKeyRotated"], true, "{rotated}");
    assert!(rotated["previousSigningKeyExpirationDate"].is_string(), "{rotated}");
}

/// `{kty, n, e, kid}` of the JWKS → the RSA public key and its kid.
fn jwks_key(jwks: &Value) -> (rsa::RsaPublicKey, String) {
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{jwks}");
    let k = &keys[0];
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["alg"], "RS256");
    let n = rsa::BigUint::from_bytes_be(&unb64url(k["n"].as_str().unwrap()));
    let e = rsa::BigUint::from_bytes_be(&unb64url(k["e"].as_str().unwrap()));
    let key = rsa::RsaPublicKey::new(n, e).expect("valid RSA key");
    assert!(key.n().bits() >= 2048);
    (key, k["kid"].as_str().expect("kid").to_string())
}

fn verify_jwt(key: &rsa::RsaPublicKey, jwt: &str) -> (Value, Vec<u8>) {
    use rsa::signature::Verifier;
    let (input, sig) = jwt.rsplit_once('.').expect("three parts");
    let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.clone());
    let signature = rsa::pkcs1v15::Signature::try_from(unb64url(sig).as_slice()).unwrap();
    verifier.verify(input.as_bytes(), &signature).expect("the JWT verifies with the JWKS key");
    let (header, body) = input.split_once('.').unwrap();
    (serde_json::from_slice(&unb64url(header)).unwrap(), unb64url(body))
}

async fn jwks_and_jwt_payloads(s: &TestServer) {
    let r = s.call(Method::GET, "/oauth/v2/keys", None, &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json")),
        "{:?}",
        r.headers
    );
    let (public, kid) = jwks_key(&r.body);
    assert_eq!(r.body, s.state.v2.keys.jwks());

    // The key is stored once, encrypted; loading again yields the same key.
    let stored = actionsd::store::orgs::get_setting(&s.state.store.db, payload::SIGNING_KEY_SETTING)
        .await
        .unwrap()
        .expect("instance signing key stored");
    assert!(stored.starts_with("v1:") && !stored.contains("PRIVATE"), "encrypted at rest");
    let again = payload::KeyState::load(&s.state.store, &encryption_key(s)).await.unwrap();
    assert_eq!(again.jwks(), r.body);

    let id = create_target(
        s,
        json!({"name": "jwt", "restWebhook": {}, "timeout": "10s", "endpoint": "https://hooks.example.com/z",
               "payloadType": "PAYLOAD_TYPE_JWT"}),
    )
    .await;
    let body = br#"{"fullMethod":"/zitadel.management.v1.ManagementService/CreateAction","userID":"1"}"#.to_vec();
    let encoded = payload::encode(&s.state.store, &s.state.v2.keys, &target_row(s, &id).await, body.clone())
        .await
        .expect("JWT encoding");
    assert_eq!(encoded.content_type, "application/jwt");
    let jwt = String::from_utf8(encoded.body).unwrap();
    let (header, payload_bytes) = verify_jwt(&public, &jwt);
    assert_eq!(header, json!({"alg": "RS256", "kid": kid, "typ": "JWT"}));
    assert_eq!(payload_bytes, body);

    // JSON targets get the body as is.
    let json_id = create_target(s, webhook("json")).await;
    let encoded =
        payload::encode(&s.state.store, &s.state.v2.keys, &target_row(s, &json_id).await, body.clone()).await.unwrap();
    assert_eq!(encoded.content_type, "application/json");
    assert_eq!(encoded.body, body);
}

enum Recipient<'a> {
    Rsa(&'a rsa::RsaPrivateKey),
    Ec(&'a p256::SecretKey),
}

/// The receiving side of a compact JWE: (protected header, plaintext).
fn decrypt_jwe(recipient: Recipient, jwe: &str) -> (Value, Vec<u8>) {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let parts: Vec<&str> = jwe.split('.').collect();
    assert_eq!(parts.len(), 5, "{jwe}");
    let header: Value = serde_json::from_slice(&unb64url(parts[0])).unwrap();
    let wrapped = unb64url(parts[1]);
    let cek = match recipient {
        Recipient::Rsa(k) => k.decrypt(rsa::Oaep::new::<Sha256>(), &wrapped).expect("RSA-OAEP-256"),
        Recipient::Ec(k) => {
            let epk = &header["epk"];
            let point = p256::EncodedPoint::from_affine_coordinates(
                unb64url(epk["x"].as_str().unwrap()).as_slice().into(),
                unb64url(epk["y"].as_str().unwrap()).as_slice().into(),
                false,
            );
            let ephemeral = p256::PublicKey::from_sec1_bytes(point.as_bytes()).unwrap();
            let z = p256::ecdh::diffie_hellman(k.to_nonzero_scalar(), ephemeral.as_affine());
            let kek = actionsd::v2::jose::concat_kdf(z.raw_secret_bytes().as_slice(), "ECDH-ES+A256KW", 256);
            aes_kw::KekAes256::try_from(kek.as_slice()).unwrap().unwrap_vec(&wrapped).expect("A256KW unwrap")
        }
    };
    let mut sealed = unb64url(parts[3]);
    sealed.extend_from_slice(&unb64url(parts[4]));
    let plain = aes_gcm::Aes256Gcm::new_from_slice(&cek)
        .unwrap()
        .decrypt(aes_gcm::Nonce::from_slice(&unb64url(parts[2])), Payload { msg: &sealed, aad: parts[0].as_bytes() })
        .expect("A256GCM");
    (header, plain)
}

async fn jwe_payloads(s: &TestServer) {
    let (public, _) = jwks_key(&s.state.v2.keys.jwks());
    let id = create_target(
        s,
        json!({"name": "jwe", "restCall": {}, "timeout": "10s", "endpoint": "https://hooks.example.com/z",
               "payloadType": "PAYLOAD_TYPE_JWE"}),
    )
    .await;
    let body = br#"{"event_type":"action.added"}"#.to_vec();
    let encode = |row: entity::target::Model| {
        let body = body.clone();
        async move { payload::encode(&s.state.store, &s.state.v2.keys, &row, body).await }
    };

    // No key, or only an inactive one: FailedPrecondition Errors.Target.NoActiveKey.
    let err = encode(target_row(s, &id).await).await.err().expect("no key");
    assert_eq!(err.kind, actionsd::error::Kind::FailedPrecondition);
    assert_eq!(err.id, Some("Errors.Target.NoActiveKey"));
    let ec = ec_key();
    let ec_id = add_key(s, &target_row(s, &id).await.id.to_string(), json!({"publicKey": b64(&ec_pem(&ec))})).await;
    let err = encode(target_row(s, &id).await).await.err().expect("inactive key");
    assert_eq!(err.id, Some("Errors.Target.NoActiveKey"));

    // EC P-256: ECDH-ES+A256KW.
    let r = s.post(&format!("{}/activate", key_path(&id, &ec_id)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let encoded = encode(target_row(s, &id).await).await.expect("JWE");
    assert_eq!(encoded.content_type, "application/jose");
    let (header, jwt) = decrypt_jwe(Recipient::Ec(&ec), std::str::from_utf8(&encoded.body).unwrap());
    assert_eq!(header["alg"], "ECDH-ES+A256KW");
    assert_eq!(header["enc"], "A256GCM");
    assert_eq!(header["kid"], ec_id.as_str());
    assert_eq!((&header["typ"], &header["cty"]), (&json!("JWT"), &json!("JWT")));
    let (_, inner) = verify_jwt(&public, std::str::from_utf8(&jwt).unwrap());
    assert_eq!(inner, body);

    // RSA (activating it deactivates the EC key): RSA-OAEP-256.
    let rsa_id = add_key(
        s,
        &id,
        json!({"publicKey": b64(&rsa_pem()), "expirationDate": actionsd::domain::time::format_micros(
            actionsd::domain::time::now_micros() + 3_600_000_000)}),
    )
    .await;
    let r = s.post(&format!("{}/activate", key_path(&id, &rsa_id)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let encoded = encode(target_row(s, &id).await).await.expect("JWE");
    let (header, jwt) = decrypt_jwe(Recipient::Rsa(rsa_key()), std::str::from_utf8(&encoded.body).unwrap());
    assert_eq!(header, json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": rsa_id, "typ": "JWT", "cty": "JWT"}));
    let (_, inner) = verify_jwt(&public, std::str::from_utf8(&jwt).unwrap());
    assert_eq!(inner, body);

    // Past its expiration the active key is not used.
    let target_id: i64 = id.parse().unwrap();
    let now = actionsd::domain::time::now_micros();
    let active = actionsd::store::targets::active_key(&s.state.store.db, target_id, now).await.unwrap();
    assert_eq!(active.map(|k| k.id.to_string()), Some(rsa_id.clone()));
    let later = now + 2 * 3_600_000_000;
    assert!(actionsd::store::targets::active_key(&s.state.store.db, target_id, later).await.unwrap().is_none());

    // Deactivated: no active key again.
    let r = s.post(&format!("{}/deactivate", key_path(&id, &rsa_id)), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let err = encode(target_row(s, &id).await).await.err().expect("deactivated");
    assert_eq!(err.id, Some("Errors.Target.NoActiveKey"));
}

backend_tests!(
    key_lifecycle,
    list_filters,
    public_key_validation,
    connect_transport,
    only_iam_owner,
    deleting_a_target_removes_its_keys,
    signing_key_rotation_grace_period,
    jwks_and_jwt_payloads,
    jwe_payloads,
);
