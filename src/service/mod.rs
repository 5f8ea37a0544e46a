//! The use cases under every transport: running a trigger, calling the targets of an execution,
//! and the durable delivery queue. They take narrow dependencies (the store, the sandbox pool, the
//! v2 runtime, metrics) and never the HTTP layer, so that they can be driven from tests, from the
//! REST gateway and Connect alike.

pub mod connector;
pub mod execute;
pub mod queue;
pub mod replay;
pub mod tail;
pub mod targets;
pub mod zitadel_api;

/// Runs `job` every `period` until `stop` turns true; with `at_start` also once right away. A late
/// tick waits a whole period again rather than catching up.
pub(crate) async fn every<F, Fut>(
    period: std::time::Duration,
    at_start: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut job: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if !at_start {
        tick.tick().await;
    }
    loop {
        tokio::select! {
            _ = tick.tick() => job().await,
            _ = stop.changed() => break,
        }
    }
}
