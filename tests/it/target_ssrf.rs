//! SSRF (README, "Actions v2"): a target whose name resolves only to denied addresses is refused
//! when it is written and again when it is called; one whose answer redirects to a denied address
//! is refused when it is called, unless allow-listed.

use crate::common;

use common::receiver::{Answer, Receiver};
use common::TestServer;
use serde_json::json;

const CREATE_ACTION: &str = "/zitadel.management.v1.ManagementService/CreateAction";

fn loopback_allowed(c: &mut actionsd::config::Config) {
    crate::common::allow_loopback(c);
}

fn defaults(_: &mut actionsd::config::Config) {}

/// This machine's host name, which resolves to a loopback address (127.0.0.1 or 127.0.1.1 in /etc/hosts).
pub(crate) async fn loopback_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name").trim().to_string();
    let addrs: Vec<_> = tokio::net::lookup_host((name.as_str(), 80)).await.expect("the host name resolves").collect();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
        "the test needs a host name that resolves to loopback; {name} → {addrs:?}"
    );
    name
}

async fn hook(s: &TestServer, endpoint: &str) -> String {
    let r = s
        .post(
            "/v2/actions/targets",
            &s.admin,
            json!({"name": "guarded", "restWebhook": {"interruptOnError": true}, "timeout": "5s", "endpoint": endpoint}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = s
        .put(
            "/v2/actions/executions",
            &s.admin,
            json!({"condition": {"request": {"method": CREATE_ACTION}}, "targets": [id]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    id
}

async fn create_action(s: &TestServer) -> common::Reply {
    create_named(s, "a").await
}

async fn create_named(s: &TestServer, name: &str) -> common::Reply {
    s.post("/management/v1/actions", &s.admin, json!({"name": name, "script": "function a(ctx, api) {}"})).await
}

async fn name_resolving_to_loopback_is_refused(s: &TestServer) {
    let rx = Receiver::start().await;
    let name = loopback_name().await;
    let endpoint = format!("http://{name}:{}/hook", rx.addr.port());
    // At create and update time: every address of the name is denied, so no call could be made.
    let body = json!({"name": "loopback", "restWebhook": {}, "timeout": "5s", "endpoint": endpoint});
    let r = s.post("/v2/actions/targets", &s.admin, body).await;
    common::assert_error(&r, 400, 3, "Errors.Target.DeniedURL", "a name resolving to loopback");
    assert!(r.body["message"].as_str().unwrap().contains("resolves only to denied addresses"), "{r:?}");
    let id = hook(s, "http://does-not-resolve.invalid/hook").await;
    let r = s.post(&format!("/v2/actions/targets/{id}"), &s.admin, json!({"endpoint": endpoint})).await;
    common::assert_error(&r, 400, 3, "Errors.Target.DeniedURL", "updated to a name resolving to loopback");
    // And at call time: the name may resolve elsewhere when the endpoint is written (DNS changes);
    // the endpoint is written through the store here, as if it had.
    let patch = actionsd::store::targets::TargetPatch { endpoint: Some(endpoint), ..Default::default() };
    actionsd::store::targets::update_target(&s.state.store, id.parse().unwrap(), patch, 0, 0).await.unwrap();
    let r = create_action(s).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 9), "{r:?}");
    assert_eq!(r.error_id(), "Errors.Execution.Failed", "{r:?}");
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("resolves to a denied address") && !message.contains("127."), "{r:?}");
    assert!(rx.requests().is_empty(), "nothing reached the receiver");
}

async fn redirect_to_denied_address_is_refused(s: &TestServer) {
    let rx = Receiver::start().await;
    hook(s, &rx.url("/hook")).await;
    for (status, location) in
        [(307, "http://169.254.169.254/latest/meta-data"), (308, "http://10.0.0.1/"), (307, "http://localhost/x")]
    {
        rx.queue([Answer::status(status).with_header("location", location)]);
        let r = create_action(s).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 9), "{location}: {r:?}");
        let message = r.body["message"].as_str().unwrap();
        assert!(message.contains("denied") && message.contains("redirect"), "{location}: {r:?}");
    }
    // A redirect within the allow list that keeps the method is followed: the same signed body
    // arrives at the new place.
    for status in [307, 308] {
        rx.queue([Answer::status(status).with_header("location", &rx.url("/moved"))]);
        let before = rx.requests().len();
        let r = create_named(s, &format!("moved-{status}")).await;
        assert_eq!(r.status, 200, "{status}: {r:?}");
        let requests = rx.requests();
        assert_eq!(requests.len(), before + 2, "{status}");
        let (first, moved) = (&requests[before], &requests[before + 1]);
        assert_eq!(moved.path, "/moved");
        assert!(!first.body.is_empty() && moved.body == first.body, "{status}: the body is sent again");
        assert_eq!(moved.headers.get("zitadel-signature"), first.headers.get("zitadel-signature"));
    }
    // One that would turn the call into a GET without its body is not followed: the call fails
    // (a delivery would be retried) instead of "succeeding" without the body ever arriving.
    for status in [301, 302, 303] {
        rx.queue([Answer::status(status).with_header("location", &rx.url("/moved"))]);
        let before = rx.requests().len();
        let r = create_action(s).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 9), "{status}: {r:?}");
        assert_eq!(r.error_id(), "Errors.Execution.Failed", "{r:?}");
        assert!(r.body["message"].as_str().unwrap().contains(&format!("HTTP {status} not followed")), "{r:?}");
        assert_eq!(rx.requests().len(), before + 1, "{status}: nothing was sent to the new place");
    }
}

mod defaults_cfg {
    use super::*;
    backend_tests_with!(defaults; name_resolving_to_loopback_is_refused);
}

mod allow_loopback {
    use super::*;
    backend_tests_with!(loopback_allowed; redirect_to_denied_address_is_refused);
}
