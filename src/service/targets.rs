//! Calling the targets of an execution: one waited-for call, one queued call, and the chain that
//! runs an execution's targets in order. Interception (request/response executions), function
//! executions inside `_execute` and the delivery queue all go through here.

use crate::error::{ApiError, ApiResult, Kind};
use crate::metrics::Metrics;
use crate::store::{deliveries, Store};
use crate::v2::call::{self, Answer, CallFailure};
use crate::v2::V2;
use entity::enums::TargetKind;
use entity::target;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Everything a target call needs, shared by every caller.
pub struct Targets {
    pub store: Arc<Store>,
    pub v2: Arc<V2>,
    pub metrics: Arc<Metrics>,
    /// Lookups in and effects through a ZITADEL instance's API (connector).
    pub zitadel: super::zitadel_api::ZitadelApi,
    encryption_key: String,
}

/// What a chain does with the targets' answers (the caller's part of [`Targets::run_chain`]).
pub trait Chain {
    /// The body the next target receives (it may include what earlier targets returned).
    fn body(&self) -> ApiResult<Vec<u8>>;
    /// A restCall target's 2xx answer. An error counts as that target failing.
    fn reply(&mut self, target: &target::Model, reply: Vec<u8>) -> ApiResult<()>;
}

/// How a chain ended.
#[derive(Debug)]
pub enum ChainEnd {
    /// Every target ran (failures of targets without `interruptOnError` were logged and skipped).
    Completed,
    /// A target with `interruptOnError` failed.
    Interrupted { target: String, error: ApiError },
    /// The chain's deadline passed while a target with `interruptOnError` was bound by it.
    OutOfTime,
}

impl Targets {
    pub fn new(store: Arc<Store>, v2: Arc<V2>, metrics: Arc<Metrics>, encryption_key: String) -> Self {
        let zitadel = super::zitadel_api::ZitadelApi::new(v2.client.clone(), v2.policy.clone());
        Self { store, v2, metrics, zitadel, encryption_key }
    }

    /// A connection's ZITADEL API settings with the token decrypted (None without `baseUrl`).
    pub fn zitadel_access(&self, c: &entity::connection::Model) -> Option<super::zitadel_api::Access> {
        let base_url = c.zitadel_base_url.clone().filter(|b| !b.is_empty())?;
        let token =
            c.zitadel_token_enc.as_deref().and_then(|t| crate::store::crypto::decrypt(&self.encryption_key, t).ok());
        Some(super::zitadel_api::Access { connection_id: c.id, base_url, token })
    }

    /// Sends one signed call and returns what came back (no interpretation).
    pub async fn send(
        &self,
        t: &target::Model,
        webhook_id: &str,
        json: Vec<u8>,
        timeout: Duration,
    ) -> Result<Answer, CallFailure> {
        call::send(&self.v2, &self.store, &self.encryption_key, t, webhook_id, json, timeout).await
    }

    /// Calls a waited-for target (restWebhook, restCall) and interprets its answer: the 2xx body, or
    /// the error the caller's operation fails with (a forwarded error keeps its status and message).
    pub async fn call_and_wait(&self, t: &target::Model, json: Vec<u8>, timeout: Duration) -> ApiResult<Vec<u8>> {
        let started = std::time::Instant::now();
        let webhook_id = self.store.new_id().to_string();
        let outcome = call::interpret(t, self.send(t, &webhook_id, json, timeout).await);
        let label = match &outcome {
            Ok(_) => "ok",
            Err(e) if e.kind == Kind::DeadlineExceeded => "timeout",
            Err(e) if e.id == Some("Errors.Execution.Forwarded") => "forwarded_error",
            Err(_) => "error",
        };
        self.metrics.observe_target_call(t.target_type.as_str(), label, started.elapsed());
        outcome
    }

    /// Queues one call of a restAsync target; the delivery queue sends it (at least once). The
    /// body is stored encrypted: an intercepted request or response may carry a secret's value or
    /// a new token, which are never kept in clear.
    pub async fn enqueue_async(&self, t: &target::Model, execution_id: &str, json: Vec<u8>) -> ApiResult<()> {
        let plain = String::from_utf8(json).map_err(ApiError::internal)?;
        let sealed = crate::store::crypto::encrypt(&self.encryption_key, &plain).map_err(ApiError::internal)?;
        deliveries::enqueue_async(&self.store, t.id, execution_id, sealed.into_bytes()).await
    }

    /// The body a delivery sends: event payloads are stored as they go out, the bodies of
    /// restAsync calls encrypted (see [`Targets::enqueue_async`]).
    pub fn delivery_body(&self, stored: &str) -> Result<Vec<u8>, String> {
        if stored.starts_with('{') {
            return Ok(stored.as_bytes().to_vec());
        }
        crate::store::crypto::decrypt(&self.encryption_key, stored).map(String::into_bytes)
    }

    /// Runs an execution's targets in order: restAsync targets are queued, restWebhook and restCall
    /// targets are called and waited for, and a restCall's answer goes to `chain`. Each call is bound
    /// by its target's timeout and, if given, by `deadline`. `Err` only for internal errors.
    pub async fn run_chain(
        &self,
        execution_id: &str,
        targets: &[Arc<target::Model>],
        deadline: Option<Instant>,
        chain: &mut impl Chain,
    ) -> ApiResult<ChainEnd> {
        for t in targets {
            let body = chain.body()?;
            if t.target_type == TargetKind::RestAsync {
                self.enqueue_async(t, execution_id, body).await?;
                continue;
            }
            let own = Duration::from_nanos(t.timeout_nanos.max(1) as u64);
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let bound_by_deadline = left.is_some_and(|left| left < own);
            let result = match left {
                Some(left) if left.is_zero() => Err(call::timed_out("the trigger time is used up")),
                _ => self.call_and_wait(t, body, left.map_or(own, |l| l.min(own))).await,
            };
            let result = result.and_then(|reply| match t.target_type {
                TargetKind::RestCall => chain.reply(t, reply),
                _ => Ok(()),
            });
            let Err(error) = result else { continue };
            if t.interrupt_on_error && bound_by_deadline && error.kind == Kind::DeadlineExceeded {
                // The caller's time ran out during a target that must not fail: the caller fails
                // for its time, not for the target.
                return Ok(ChainEnd::OutOfTime);
            }
            // Without interruptOnError a call cut short by the caller's time is an error like
            // any other: logged, and the next target runs (with no time left it fails at once).
            if t.interrupt_on_error {
                return Ok(ChainEnd::Interrupted { target: t.name.clone(), error });
            }
            tracing::warn!(target_id = t.id, target = ?t.name, execution = execution_id, error = ?error.message,
                "target failed; continuing (interruptOnError is off)");
        }
        Ok(ChainEnd::Completed)
    }
}
