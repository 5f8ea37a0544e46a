//! One RPC over every transport actionsd speaks: the REST gateway, Connect JSON, Connect proto,
//! gRPC (h2c), gRPC-web and gRPC-web-text. Protobuf messages are built and read with the
//! descriptors the server embeds (compiled from proto/), so the tests speak the wire format.

use super::TestServer;
use actionsd::api::{BodyMode, Rpc};
use base64::Engine;
use http_body_util::BodyExt;
use hyper::body::Bytes;
use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Rest,
    ConnectJson,
    ConnectProto,
    Grpc,
    GrpcWeb,
    GrpcWebText,
}

pub const ALL: [Via; 6] = [Via::Rest, Via::ConnectJson, Via::ConnectProto, Via::Grpc, Via::GrpcWeb, Via::GrpcWebText];

/// What a call came back with, the same on every transport: the gRPC code (0 for success), the
/// error message, and the response message as protobuf JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub via: Via,
    pub code: i64,
    pub message: String,
    pub body: Value,
}

impl Outcome {
    pub fn ok(&self) -> &Value {
        assert_eq!(self.code, 0, "{self:?}");
        &self.body
    }
}

pub fn pool() -> DescriptorPool {
    DescriptorPool::decode(actionsd::api::grpc::DESCRIPTOR_SET).expect("descriptor set")
}

pub fn rpc(full: &str) -> &'static Rpc {
    actionsd::api::rpcs()
        .iter()
        .find(|r| r.full_name().trim_start_matches('/') == full)
        .unwrap_or_else(|| panic!("no RPC {full}"))
}

fn messages(rpc: &Rpc) -> (MessageDescriptor, MessageDescriptor) {
    let pool = pool();
    let service = pool.get_service_by_name(rpc.service).expect("service");
    let method = service.methods().find(|m| m.name() == rpc.method).expect("method");
    (method.input(), method.output())
}

/// The protobuf message of a JSON request (protobuf's JSON mapping; unknown fields refused).
pub fn to_message(desc: &MessageDescriptor, json: &Value) -> DynamicMessage {
    DynamicMessage::deserialize_with_options(desc.clone(), json.clone(), &DeserializeOptions::new())
        .unwrap_or_else(|e| panic!("{json} is not a {}: {e}", desc.full_name()))
}

/// The canonical protobuf JSON of a JSON message (unknown fields refused).
pub fn canonical(desc: &MessageDescriptor, json: &Value) -> Value {
    let message = to_message(desc, json);
    message.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new()).expect("to JSON")
}

fn connect_code(code: &str) -> i64 {
    match code {
        "canceled" => 1,
        "unknown" => 2,
        "invalid_argument" => 3,
        "deadline_exceeded" => 4,
        "not_found" => 5,
        "already_exists" => 6,
        "permission_denied" => 7,
        "resource_exhausted" => 8,
        "failed_precondition" => 9,
        "aborted" => 10,
        "out_of_range" => 11,
        "unimplemented" => 12,
        "internal" => 13,
        "unavailable" => 14,
        "data_loss" => 15,
        "unauthenticated" => 16,
        other => panic!("unknown Connect code {other}"),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 grpc-message")
}

/// The REST path of an RPC with the request's path parameters filled in, and the rest of the body.
fn rest_target(rpc: &Rpc, request: &Value) -> (String, Value) {
    let mut body = request.clone();
    let mut path = String::new();
    let mut rest = rpc.path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').expect("closing brace") + start;
        let name = &rest[start + 1..end];
        let value = body.as_object_mut().and_then(|m| m.remove(name)).unwrap_or(Value::String("0".into()));
        let value = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        path.push_str(&rest[..start]);
        path.push_str(&value);
        rest = &rest[end + 1..];
    }
    path.push_str(rest);
    (path, body)
}

/// A plain HTTP/2 (prior knowledge) client for gRPC.
pub fn h2_client(
) -> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, http_body_util::Full<Bytes>>
{
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).http2_only(true).build_http()
}

/// A length-prefixed gRPC message (`flags` 0, or 0x80 for a gRPC-web trailer block).
pub fn frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a gRPC(-web) body into its messages and (gRPC-web) trailer block.
fn unframe(mut body: &[u8]) -> (Vec<Vec<u8>>, Vec<(String, String)>) {
    let mut messages = Vec::new();
    let mut trailers = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "truncated frame");
        let flags = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = &body[5..5 + len];
        if flags & 0x80 != 0 {
            for line in String::from_utf8_lossy(payload).split("\r\n").filter(|l| !l.is_empty()) {
                let (k, v) = line.split_once(':').expect("trailer line");
                trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        } else {
            assert_eq!(flags, 0, "uncompressed");
            messages.push(payload.to_vec());
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

/// The answer of a raw gRPC call: status and message from the trailers (or, for a
/// trailers-only answer, the headers), the response headers, and the body as sent.
pub struct RawGrpc {
    pub status: String,
    pub message: Option<String>,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// POSTs `body` (framed by the caller, as given) to `url` as a gRPC call over h2c, with extra
/// metadata.
pub async fn grpc_raw(url: &str, metadata: &[(&str, &str)], body: Vec<u8>) -> RawGrpc {
    let mut req = hyper::Request::post(url).header("content-type", "application/grpc").header("te", "trailers");
    for (k, v) in metadata {
        req = req.header(*k, *v);
    }
    let resp = h2_client()
        .request(req.body(http_body_util::Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("gRPC call");
    assert_eq!(resp.status(), 200, "gRPC answers 200");
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let headers = resp.headers().clone();
    let collected = resp.into_body().collect().await.expect("gRPC body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let field =
        |name: &str| trailers.get(name).or_else(|| headers.get(name)).map(|v| v.to_str().expect("ascii").to_string());
    let status = field("grpc-status").expect("grpc-status");
    let message = field("grpc-message").map(|m| percent_decode(&m));
    RawGrpc { status, message, headers, body: collected.to_bytes() }
}

impl TestServer {
    /// Calls `rpc` with a JSON request over `via`; `org` sets `x-zitadel-orgid`.
    pub async fn rpc_via(
        &self,
        via: Via,
        rpc: &Rpc,
        token: Option<&str>,
        org: Option<&str>,
        request: &Value,
    ) -> Outcome {
        let (input, output) = messages(rpc);
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(t) = token {
            headers.push(("authorization".into(), format!("Bearer {t}")));
        }
        if let Some(o) = org {
            headers.push(("x-zitadel-orgid".into(), o.into()));
        }
        let url = format!("{}/{}/{}", self.base, rpc.service, rpc.method);
        let decode_out = |bytes: &[u8]| -> Value {
            let message = DynamicMessage::decode(output.clone(), bytes).expect("response message");
            message.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new()).expect("JSON")
        };
        match via {
            Via::Rest | Via::ConnectJson => {
                let (method, url, body) = if via == Via::Rest {
                    let (path, body) = rest_target(rpc, request);
                    let body = (rpc.body == BodyMode::Whole).then_some(body);
                    (rpc.http.clone(), format!("{}{path}", self.base), body)
                } else {
                    (reqwest::Method::POST, url, Some(request.clone()))
                };
                let mut req = self.client.request(method, url);
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let resp = req.send().await.expect("request");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.expect("JSON body");
                if status == 200 {
                    Outcome { via, code: 0, message: String::new(), body: canonical(&output, &body) }
                } else {
                    let code = match &body["code"] {
                        Value::String(c) => connect_code(c),
                        other => other.as_i64().expect("numeric code"),
                    };
                    let message = body["message"].as_str().unwrap_or_default().to_string();
                    Outcome { via, code, message, body: Value::Null }
                }
            }
            Via::ConnectProto => {
                let mut req = self.client.post(url).header("content-type", "application/proto");
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let resp = req.body(to_message(&input, request).encode_to_vec()).send().await.expect("request");
                let status = resp.status().as_u16();
                let media = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
                let bytes = resp.bytes().await.expect("body");
                if status == 200 {
                    assert_eq!(media.as_deref(), Some("application/proto"));
                    Outcome { via, code: 0, message: String::new(), body: decode_out(&bytes) }
                } else {
                    assert_eq!(media.as_deref(), Some("application/json"), "Connect errors are JSON");
                    let body: Value = serde_json::from_slice(&bytes).expect("Connect error JSON");
                    Outcome {
                        via,
                        code: connect_code(body["code"].as_str().expect("code")),
                        message: body["message"].as_str().unwrap_or_default().into(),
                        body: Value::Null,
                    }
                }
            }
            Via::Grpc => {
                let payload = frame(0, &to_message(&input, request).encode_to_vec());
                let metadata: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let answer = grpc_raw(&url, &metadata, payload).await;
                let code: i64 = answer.status.parse().expect("numeric status");
                let (messages, _) = unframe(&answer.body);
                if code == 0 {
                    assert_eq!(messages.len(), 1, "one response message");
                    Outcome { via, code, message: String::new(), body: decode_out(&messages[0]) }
                } else {
                    assert!(messages.is_empty(), "no message with an error");
                    Outcome { via, code, message: answer.message.unwrap_or_default(), body: Value::Null }
                }
            }
            Via::GrpcWeb | Via::GrpcWebText => {
                let payload = frame(0, &to_message(&input, request).encode_to_vec());
                let (media, payload) = if via == Via::GrpcWeb {
                    ("application/grpc-web+proto", payload)
                } else {
                    (
                        "application/grpc-web-text",
                        base64::engine::general_purpose::STANDARD.encode(payload).into_bytes(),
                    )
                };
                let mut req = self.client.post(url).header("content-type", media).header("x-grpc-web", "1");
                for (k, v) in &headers {
                    req = req.header(k, v);
                }
                let resp = req.body(payload).send().await.expect("request");
                assert_eq!(resp.status(), 200, "gRPC-web answers 200");
                let head = resp.headers().clone();
                let mut bytes = resp.bytes().await.expect("body").to_vec();
                if via == Via::GrpcWebText {
                    bytes = base64::engine::general_purpose::STANDARD.decode(&bytes).expect("base64 body");
                }
                let (messages, trailers) = unframe(&bytes);
                let field = |name: &str| {
                    trailers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .or_else(|| head.get(name).map(|v| v.to_str().expect("ascii").to_string()))
                };
                let code: i64 = field("grpc-status").expect("grpc-status").parse().expect("numeric status");
                if code == 0 {
                    assert_eq!(messages.len(), 1, "one response message");
                    Outcome { via, code, message: String::new(), body: decode_out(&messages[0]) }
                } else {
                    let message = percent_decode(&field("grpc-message").unwrap_or_default());
                    Outcome { via, code, message, body: Value::Null }
                }
            }
        }
    }

    /// The same call over every transport.
    pub async fn rpc_all(&self, rpc: &Rpc, token: Option<&str>, org: Option<&str>, request: &Value) -> Vec<Outcome> {
        let mut out = Vec::new();
        for via in ALL {
            out.push(self.rpc_via(via, rpc, token, org, request).await);
        }
        out
    }
}
