use crate::common;

use common::TestServer;
use serde_json::json;

async fn create_get_roundtrip(s: &TestServer) {
    let r = s
        .post(
            "/management/v1/actions",
            &s.admin,
            json!({"name": "a", "script": "function a(){}", "timeout": "1.5s", "allowed_to_fail": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["sequence"], "1");
    let id = r.body["id"].as_str().unwrap();
    let g = s.get(&format!("/management/v1/actions/{id}"), &s.admin).await;
    assert_eq!(g.body["action"]["timeout"], "1.500s", "{g:?}");
    assert_eq!(g.body["action"]["allowedToFail"], true);
    let c = s.connect("zitadel.management.v1.ManagementService/GetAction", &s.admin, json!({"id": id})).await;
    assert_eq!(c.status, 200, "{c:?}");
    assert_eq!(c.body["action"]["id"], id);
}

backend_tests!(create_get_roundtrip);
