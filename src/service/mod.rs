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
/// tick waits a whole period again rather than catching up. A run that panics is logged and the job
/// runs again at its next tick: one bad round (a bug, a value no statement can bind) must not end
/// pruning or lease renewal for the rest of the process's life.
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
            _ = tick.tick() => {
                use futures::FutureExt;
                if std::panic::AssertUnwindSafe(job()).catch_unwind().await.is_err() {
                    tracing::error!("a background job panicked; it runs again at its next tick");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    /// A round that panics does not end the job: the next tick runs it again.
    #[tokio::test]
    async fn a_panicking_round_does_not_end_the_job() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let rounds = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        let counted = rounds.clone();
        let job = tokio::spawn(super::every(std::time::Duration::from_millis(5), true, stop, move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let done_tx = done_tx.clone();
            async move {
                assert!(n % 2 == 1, "round {n} fails");
                let _ = done_tx.send(n);
            }
        }));
        assert_eq!(done.recv().await, Some(1));
        assert_eq!(done.recv().await, Some(3));
        stop_tx.send(true).unwrap();
        job.await.expect("the job ends when stopped, not by a panic");
        assert!(rounds.load(Ordering::SeqCst) >= 4);
    }
}
