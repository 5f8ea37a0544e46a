//! A local HTTP receiver for target calls: records every request and answers as scripted.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The client's address (its source port tells connections apart).
    pub peer: std::net::SocketAddr,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Answer { status, body: String::new(), headers: Vec::new(), delay: Duration::ZERO }
    }
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Answer {
            status,
            body: body.to_string(),
            headers: vec![("content-type".into(), "application/json".into())],
            delay: Duration::ZERO,
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<Recorded>>,
    /// Answers used once each, in order, before the default.
    queued: Mutex<VecDeque<Answer>>,
    /// Standing answers for one path, before the default.
    per_path: Mutex<HashMap<String, Answer>>,
    /// Standing answers for one path and one value of a request header, before `per_path`.
    per_header: Mutex<Vec<(String, String, String, Answer)>>,
    default: Mutex<Option<Answer>>,
    changed: tokio::sync::Notify,
}

pub struct Receiver {
    pub addr: std::net::SocketAddr,
    inner: Arc<Inner>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = {
        let next = inner.queued.lock().unwrap().pop_front();
        let by_header = || {
            let list = inner.per_header.lock().unwrap();
            list.iter()
                .find(|(path, name, value, _)| {
                    path == uri.path() && headers.get(name.as_str()).is_some_and(|v| v.as_bytes() == value.as_bytes())
                })
                .map(|(_, _, _, answer)| answer.clone())
        };
        next.or_else(by_header)
            .or_else(|| inner.per_path.lock().unwrap().get(uri.path()).cloned())
            .or_else(|| inner.default.lock().unwrap().clone())
            .unwrap_or_else(|| Answer::status(200))
    };
    inner.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
        peer,
    });
    inner.changed.notify_waiters();
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut resp = (StatusCode::from_u16(answer.status).unwrap(), answer.body).into_response();
    for (k, v) in answer.headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&v).unwrap(),
        );
    }
    resp
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().unwrap();
        let r = Receiver { addr, inner: Arc::new(Inner::default()), task: Mutex::new(None) };
        r.serve(listener);
        r
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let app = axum::Router::new().fallback(handle).with_state(self.inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Stops listening (connections are refused) until [`Receiver::resume`].
    pub async fn pause(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    pub async fn resume(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind receiver");
        self.serve(listener);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set_default(&self, answer: Answer) {
        *self.inner.default.lock().unwrap() = Some(answer);
    }

    /// Answers every request to `path` with `answer` (after any queued answers).
    pub fn reply_at(&self, path: &str, answer: Answer) {
        self.inner.per_path.lock().unwrap().insert(path.to_string(), answer);
    }

    /// Answers requests to `path` whose header `name` is `value` with `answer` (before
    /// [`Receiver::reply_at`]'s answer for the path).
    pub fn reply_at_with_header(&self, path: &str, name: &str, value: &str, answer: Answer) {
        self.inner.per_header.lock().unwrap().push((path.into(), name.into(), value.into(), answer));
    }

    pub fn queue(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.queued.lock().unwrap().extend(answers);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits until `pred` holds for the recorded requests, or panics after `timeout`.
    pub async fn wait_until(&self, timeout: Duration, what: &str, pred: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            let now = self.requests();
            if pred(&now) {
                return now;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let now = self.requests();
                if pred(&now) {
                    return now;
                }
                panic!("receiver: timed out waiting for {what}; got {} requests", now.len());
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// HMAC-SHA256 as the target signatures use it.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Checks `ZITADEL-Signature: t=…,v1=…` against `key` (any of the v1 entries may match).
pub fn zitadel_signature_valid(r: &Recorded, key: &str) -> bool {
    let header = r.header("zitadel-signature");
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut data = format!("{t}.").into_bytes();
    data.extend_from_slice(&r.body);
    let expected = hex::encode(hmac_sha256(key.as_bytes(), &data));
    sigs.contains(&expected)
}

/// Checks the Standard Webhooks headers against `key` (the UTF-8 bytes of the signing key).
pub fn standard_webhooks_valid(r: &Recorded, key: &str) -> bool {
    use base64::Engine;
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    let mut data = format!("{id}.{ts}.").into_bytes();
    data.extend_from_slice(&r.body);
    let expected =
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), &data)));
    !id.is_empty() && r.header("webhook-signature").split(' ').any(|s| s == expected)
}
