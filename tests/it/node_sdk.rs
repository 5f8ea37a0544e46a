//! The official ZITADEL Node SDK (`@zitadel/node`, pinned in tests/node_sdk) against actionsd
//! over gRPC on h2c: actions, flows and triggers through its management client with its
//! access-token interceptor, and the ActionService v2 through nice-grpc with the SDK's generated
//! definitions (tests/node_sdk/sdk.test.mjs). Needs `npm ci` in tests/node_sdk (`.ci/run` does
//! it); without it the test says SKIPPED, unless ACTIONSD_TEST_REQUIRE_NODE_SDK is set (CI).

use crate::common;

use common::TestServer;

async fn official_node_sdk_manages_actions_flows_targets_and_executions(s: &TestServer) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node_sdk");
    if !common::npm_installed_or_skip(
        &dir,
        "node_modules/@zitadel/node",
        "ACTIONSD_TEST_REQUIRE_NODE_SDK",
        "@zitadel/node SDK test",
    ) {
        return;
    }
    let out = tokio::process::Command::new("node")
        .arg(dir.join("sdk.test.mjs"))
        .current_dir(&dir)
        .env("ACTIONSD_URL", &s.base)
        .env("ACTIONSD_TOKEN", &s.admin)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Node SDK test failed ({}):\n{stdout}{}",
        s.backend,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.starts_with("node-sdk: ") && summary.ends_with(" 0 failed"), "{stdout}");
    let passed: usize = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    assert!(passed >= 20, "every step ran: {stdout}");
}

backend_tests!(official_node_sdk_manages_actions_flows_targets_and_executions);
