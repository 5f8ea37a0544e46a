//! gRPC, gRPC-web and Connect with protobuf bodies, on the Connect routes (`POST
//! /<package.Service>/<Method>`): the request message is decoded from protobuf with the
//! descriptors compiled from `proto/` and handed to the same handler, interception, auth and
//! validation as its JSON form, as the JSON of protobuf's JSON mapping; the handler's JSON answer
//! is encoded back. The content type picks the protocol:
//!
//! | content type | protocol |
//! |---|---|
//! | `application/grpc`, `application/grpc+proto`, `application/grpc+json` | gRPC (HTTP/2; h2c or TLS) |
//! | `application/grpc-web`, `application/grpc-web+proto`, `+json` | gRPC-web (HTTP/1.1 or 2) |
//! | `application/grpc-web-text`, `application/grpc-web-text+proto` | gRPC-web, base64 bodies |
//! | `application/proto` | Connect unary, protobuf body (errors stay Connect JSON) |
//! | anything else | Connect unary JSON (as before) |

use super::Rpc;
use crate::error::{ApiError, ApiResult, Kind};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use std::collections::HashMap;
use std::time::Duration;

// Header names as constants: a name given as text is parsed and checked on every lookup.
const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const CONNECT_TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// The descriptor set of every file in `proto/` and its imports (compiled by `build.rs`).
pub const DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/actionsd.fds"));

/// The request and response descriptors of every method declared in `proto/`, by path
/// (`/zitadel.management.v1.ManagementService/GetAction`).
pub struct Protos {
    pool: DescriptorPool,
    /// Service full name → method name → (request, response, the response's encoding plan).
    methods: HashMap<String, HashMap<String, (MessageDescriptor, MessageDescriptor, usize)>>,
    encoder: super::protojson::Encoder,
}

impl Protos {
    pub fn load() -> anyhow::Result<Protos> {
        let pool = DescriptorPool::decode(DESCRIPTOR_SET)?;
        let encoder = super::protojson::Encoder::new(&pool);
        let mut methods: HashMap<String, HashMap<_, _>> = HashMap::new();
        for service in pool.services() {
            for method in service.methods() {
                let plan = encoder
                    .plan_of(&method.output())
                    .ok_or_else(|| anyhow::anyhow!("{} has no encoding plan", method.output().full_name()))?;
                methods
                    .entry(service.full_name().to_string())
                    .or_default()
                    .insert(method.name().to_string(), (method.input(), method.output(), plan));
            }
        }
        Ok(Protos { pool, methods, encoder })
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    /// The request and response messages of a service's method.
    pub fn method(&self, service: &str, method: &str) -> Option<&(MessageDescriptor, MessageDescriptor, usize)> {
        self.methods.get(service)?.get(method)
    }

    /// Every method path (`/<service>/<method>`) declared in `proto/`.
    pub fn method_names(&self) -> Vec<String> {
        self.methods.iter().flat_map(|(s, m)| m.keys().map(move |name| format!("/{s}/{name}"))).collect()
    }
}

/// How a message body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Proto,
    Json,
}

/// How gRPC messages are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// gRPC over HTTP/2: length-prefixed messages, status in HTTP trailers.
    Grpc,
    /// gRPC-web: length-prefixed messages, status in a trailer frame of the body.
    Web,
    /// gRPC-web-text: the gRPC-web body in base64.
    WebText,
}

/// The protocol of a request on a Connect route, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    ConnectJson,
    ConnectProto,
    Grpc(Framing, Codec),
}

impl Protocol {
    pub fn from_headers(headers: &HeaderMap) -> Protocol {
        let Some(media) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
            return Protocol::ConnectJson;
        };
        // Media types are case-insensitive; compared without allocating (every Connect call).
        let media = media.split(';').next().unwrap_or("").trim();
        let strip = |prefix: &str| {
            media.get(..prefix.len()).filter(|head| head.eq_ignore_ascii_case(prefix)).map(|_| &media[prefix.len()..])
        };
        let grpc = |rest: &str, framing: Framing| {
            if rest.is_empty() || rest.eq_ignore_ascii_case("+proto") {
                Some(Protocol::Grpc(framing, Codec::Proto))
            } else if rest.eq_ignore_ascii_case("+json") {
                Some(Protocol::Grpc(framing, Codec::Json))
            } else {
                None
            }
        };
        let found = if let Some(rest) = strip("application/grpc-web-text") {
            grpc(rest, Framing::WebText)
        } else if let Some(rest) = strip("application/grpc-web") {
            grpc(rest, Framing::Web)
        } else if let Some(rest) = strip("application/grpc") {
            grpc(rest, Framing::Grpc)
        } else if media.eq_ignore_ascii_case("application/proto") {
            Some(Protocol::ConnectProto)
        } else {
            None
        };
        found.unwrap_or(Protocol::ConnectJson)
    }

    /// The response's content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::ConnectJson => "application/json",
            Protocol::ConnectProto => "application/proto",
            Protocol::Grpc(Framing::Grpc, Codec::Proto) => "application/grpc",
            Protocol::Grpc(Framing::Grpc, Codec::Json) => "application/grpc+json",
            Protocol::Grpc(Framing::Web, Codec::Proto) => "application/grpc-web+proto",
            Protocol::Grpc(Framing::Web, Codec::Json) => "application/grpc-web+json",
            Protocol::Grpc(Framing::WebText, Codec::Proto) => "application/grpc-web-text+proto",
            Protocol::Grpc(Framing::WebText, Codec::Json) => "application/grpc-web-text+json",
        }
    }

    pub fn codec(self) -> Codec {
        match self {
            Protocol::ConnectJson => Codec::Json,
            Protocol::ConnectProto => Codec::Proto,
            Protocol::Grpc(_, codec) => codec,
        }
    }
}

fn descriptors<'a>(protos: &'a Protos, rpc: &Rpc) -> ApiResult<&'a (MessageDescriptor, MessageDescriptor, usize)> {
    protos
        .method(rpc.service, rpc.method)
        .ok_or_else(|| ApiError::bare(Kind::Unimplemented, format!("{} has no protobuf definition", rpc.full_name())))
}

/// The RPC's request message, when it has a protobuf definition.
pub fn request_descriptor<'a>(protos: &'a Protos, rpc: &Rpc) -> Option<&'a MessageDescriptor> {
    protos.method(rpc.service, rpc.method).map(|(input, _, _)| input)
}

/// The first field (its path of JSON names, `[i]` for a list item) holding a value that protobuf's
/// JSON mapping cannot write, and why: a `Timestamp` or `Duration` out of its range or with nanos
/// that do not fit its seconds, or a message (a `Struct` with NaN) that does not serialize. Those
/// two are checked here because the serializer would quietly normalize their nanos.
fn no_json_form(message: &DynamicMessage, path: &mut Vec<String>) -> Option<String> {
    use prost_reflect::Value;
    for (field, value) in message.fields() {
        let name = field.json_name();
        let mut within = |segment: String, m: &DynamicMessage| {
            path.push(segment);
            let found = misfit_value(m, path);
            if found.is_none() {
                path.pop();
            }
            found
        };
        let found = match value {
            Value::Message(m) => within(name.to_string(), m),
            Value::List(items) => items.iter().enumerate().find_map(|(i, item)| match item {
                Value::Message(m) => within(format!("{name}[{i}]"), m),
                _ => None,
            }),
            Value::Map(entries) => entries.values().find_map(|v| match v {
                Value::Message(m) => within(name.to_string(), m),
                _ => None,
            }),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Why `m` has no JSON form (see [`no_json_form`]); a message of the API's own looks into its fields.
fn misfit_value(m: &DynamicMessage, path: &mut Vec<String>) -> Option<String> {
    let name = prost_reflect::ReflectMessage::descriptor(m).full_name().to_string();
    let int = |field: &str| m.get_field_by_name(field).and_then(|v| v.as_i64().or(v.as_i32().map(i64::from)));
    let (seconds, nanos) = (int("seconds").unwrap_or(0), int("nanos").unwrap_or(0));
    match name.as_str() {
        "google.protobuf.Timestamp" => (!super::protojson::timestamp_fits(seconds, nanos))
            .then(|| format!("not a timestamp of years 1 to 9999 (seconds {seconds}, nanos {nanos})")),
        "google.protobuf.Duration" => (!super::protojson::duration_fits(seconds, nanos)).then(|| {
            format!(
                "has no JSON form: not a duration of at most {} s with nanos of its sign (seconds {seconds}, nanos {nanos})",
                crate::domain::duration::MAX_SECONDS
            )
        }),
        n if n.starts_with("google.protobuf.") => m
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .err()
            .map(|e| format!("has no JSON form: {e}")),
        _ => no_json_form(m, path),
    }
}

/// Decodes a protobuf request message into the JSON its handler reads (protobuf's JSON mapping:
/// lowerCamelCase names, 64-bit integers as strings, enums by name, unset fields left out).
pub fn decode_request(protos: &Protos, rpc: &Rpc, bytes: &[u8]) -> ApiResult<serde_json::Value> {
    let (input, _, _) = descriptors(protos, rpc)?;
    let value = match super::protojson::decode(input, bytes) {
        Some(value) => value,
        None => {
            let message = DynamicMessage::decode(input.clone(), bytes).map_err(|e| {
                // Named as a JSON error names it (`GetActionRequest.Id`) where a field is to blame.
                let at = super::protojson::misfit_field(input, bytes)
                    .map(|path| format!(".{}", super::field_path(&path)))
                    .unwrap_or_default();
                ApiError::invalid(format!("invalid {}{at}: malformed protobuf message: {e}", rpc.message_name()))
            })?;
            // A well-known value out of its range (a Duration over 10,000 years, a Timestamp of
            // nanos below 0, a Struct's NaN) is named like a JSON field of the wrong form.
            let mut path = Vec::new();
            if let Some(reason) = no_json_form(&message, &mut path) {
                let at = super::field_path(&path.join("."));
                return Err(ApiError::invalid(format!("invalid {}.{at}: {reason}", rpc.message_name())));
            }
            message.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new()).map_err(|e| {
                ApiError::invalid(format!("invalid {}: the message has no JSON form: {e}", rpc.message_name()))
            })?
        }
    };
    // A `Struct` nests one JSON level per level of its own, so a protobuf message could carry
    // what its JSON form may not (and what the sandbox, which reads JSON, could not take).
    let limit = crate::domain::nesting::JSON_MAX;
    if crate::domain::nesting::depth(&value) > limit {
        return Err(ApiError::invalid(format!(
            "invalid {}: nested deeper than the {limit} levels the same message may have as JSON",
            rpc.message_name()
        )));
    }
    Ok(value)
}

/// Of a request [`Protocol::from_headers`] read as Connect JSON: a content type that names a
/// protocol or codec this server does not speak (gRPC with a codec other than proto or JSON,
/// Connect streaming, protobuf under another name), refused with 415 rather than read as JSON.
/// Types that say nothing of protobuf (none, `text/plain`, a form type as `curl -d` sends) stay
/// Connect JSON.
pub fn unsupported_media(headers: &HeaderMap) -> Option<String> {
    let media = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = media.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        return None;
    }
    let media = media.to_ascii_lowercase();
    let subtype = media.strip_prefix("application/")?;
    let unsupported = subtype.starts_with("grpc") || subtype.starts_with("connect+") || subtype.contains("proto");
    unsupported.then_some(media)
}

/// The content types a Connect route takes (`Accept-Post` of a 415).
pub const ACCEPTED_MEDIA: &str = "application/json, application/proto, application/grpc, application/grpc+proto, \
application/grpc+json, application/grpc-web, application/grpc-web+proto, application/grpc-web+json, \
application/grpc-web-text, application/grpc-web-text+proto, application/grpc-web-text+json";

/// A request message in the canonical form of protobuf's JSON mapping (lowerCamelCase, zero
/// values omitted, int64 as strings, enums by name), read from any form the mapping accepts
/// (proto names, enum numbers, int64 numbers, timestamps with offsets); None when the value is
/// not the RPC's request message.
pub fn canonical_message(protos: &Protos, rpc: &Rpc, value: &serde_json::Value) -> Option<serde_json::Value> {
    let (input, _, _) = descriptors(protos, rpc).ok()?;
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let mut value = value.clone();
    strings_for_numbers(input, &mut value, 0);
    let message = DynamicMessage::deserialize_with_options(input.clone(), value, &options).ok()?;
    message.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new()).ok()
}

/// Numbers given for string fields (ids and type numbers, which the handlers take either way)
/// written as strings, so that the JSON mapping reads the message as the handler did.
fn strings_for_numbers(desc: &MessageDescriptor, value: &mut serde_json::Value, depth: u32) {
    use prost_reflect::Kind;
    let Some(object) = value.as_object_mut() else { return };
    if depth > 64 || desc.full_name().starts_with("google.protobuf.") {
        return;
    }
    for (name, v) in object.iter_mut() {
        let Some(field) = desc.get_field_by_json_name(name).or_else(|| desc.get_field_by_name(name)) else {
            continue;
        };
        if field.is_map() {
            continue;
        }
        let items: Vec<&mut serde_json::Value> = match v {
            serde_json::Value::Array(items) if field.is_list() => items.iter_mut().collect(),
            other => vec![other],
        };
        for item in items {
            match field.kind() {
                Kind::String if item.is_number() => *item = serde_json::Value::String(item.to_string()),
                Kind::Message(m) => strings_for_numbers(&m, item, depth + 1),
                _ => {}
            }
        }
    }
}

/// Encodes a handler's JSON answer as the RPC's protobuf response message.
pub fn encode_response(protos: &Protos, rpc: &Rpc, value: serde_json::Value) -> ApiResult<Vec<u8>> {
    let (_, output, plan) = descriptors(protos, rpc)?;
    if let Some(bytes) = protos.encoder.encode(*plan, &value) {
        return Ok(bytes);
    }
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let message = DynamicMessage::deserialize_with_options(output.clone(), value, &options)
        .map_err(|e| ApiError::internal(format!("{} response does not fit its message: {e}", rpc.full_name())))?;
    Ok(message.encode_to_vec())
}

/// Whether a handler's JSON answer reads as its protobuf response message under protobuf's JSON
/// mapping with unknown fields refused (`check_proto_answers`): then gRPC and Connect proto
/// clients get every field a JSON client gets.
pub fn check_answer(protos: &Protos, rpc: &Rpc, value: &serde_json::Value) -> ApiResult<()> {
    // prost-reflect reads messages up to its recursion limit (100 message levels; a JSON level
    // of a `Struct` is two): deeper answers (a script's deeply nested claim) are not checked.
    if crate::domain::nesting::depth(value) > 40 {
        return Ok(());
    }
    let (_, output, _) = descriptors(protos, rpc)?;
    not_the_message(output, value).map_or(Ok(()), |e| {
        Err(ApiError::internal(format!("{} answer is not its protobuf message: {e}: {value}", rpc.full_name())))
    })
}

/// A response target's reply read as ZITADEL reads it (protobuf's JSON mapping, unknown fields
/// refused) and written back in the form every answer has on every transport (lowerCamelCase
/// names, zero values omitted, int64s as strings, enums by name, UTC timestamps, `"1.500s"`
/// durations), as ZITADEL's gateway writes the message a reply was read into. `Err` says why the
/// reply is not the RPC's response message.
pub fn read_reply(
    protos: &Protos,
    rpc: &Rpc,
    value: serde_json::Value,
) -> ApiResult<Result<serde_json::Value, String>> {
    let (_, output, _) = descriptors(protos, rpc)?;
    let message = match DynamicMessage::deserialize_with_options(output.clone(), value, &DeserializeOptions::new()) {
        Ok(message) => message,
        Err(why) => return Ok(Err(format!("not a {} message: {why}", output.name()))),
    };
    let bytes = message.encode_to_vec();
    if let Some(canonical) = super::protojson::decode(output, &bytes) {
        return Ok(Ok(canonical));
    }
    message
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map(Ok)
        .map_err(|e| ApiError::internal(format!("{} reply: {e}", rpc.full_name())))
}

fn not_the_message(output: &MessageDescriptor, value: &serde_json::Value) -> Option<String> {
    DynamicMessage::deserialize_with_options(output.clone(), value.clone(), &DeserializeOptions::new())
        .err()
        .map(|e| e.to_string())
}

/// The message of a unary gRPC request body (exactly one length-prefixed message).
pub fn unframe(body: &Bytes, headers: &HeaderMap, rpc: &Rpc) -> ApiResult<Bytes> {
    let mut rest: &[u8] = body;
    let mut message = None;
    while !rest.is_empty() {
        if rest.len() < 5 {
            return Err(ApiError::invalid(format!("invalid {}: truncated gRPC frame", rpc.message_name())));
        }
        let flags = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(payload) = rest.get(5..5 + len) else {
            return Err(ApiError::invalid(format!("invalid {}: truncated gRPC frame", rpc.message_name())));
        };
        if flags & 0x80 != 0 {
            return Err(ApiError::invalid("a gRPC request carries no trailers"));
        }
        // The flag byte is 0 or 1 (compressed); the other bits are reserved, not to be guessed at.
        if flags & !0x01 != 0 {
            return Err(ApiError::invalid(format!(
                "invalid {}: gRPC frame flags {flags:#04x} (only 0x00 and 0x01 exist)",
                rpc.message_name()
            )));
        }
        if flags & 0x01 != 0 {
            let encoding = headers.get("grpc-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity");
            return Err(ApiError::bare(
                Kind::Unimplemented,
                format!("compressed messages are not supported (grpc-encoding {encoding}); send identity"),
            ));
        }
        let start = body.len() - rest.len() + 5;
        if message.replace(body.slice(start..start + payload.len())).is_some() {
            return Err(ApiError::invalid(format!("{} is unary: send exactly one message", rpc.full_name())));
        }
        rest = &rest[5 + len..];
    }
    message.ok_or_else(|| ApiError::invalid(format!("{} is unary: send exactly one message", rpc.full_name())))
}

fn frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `grpc-timeout` (`<digits><H|M|S|m|u|n>`), or Connect's `connect-timeout-ms`.
pub fn deadline(headers: &HeaderMap) -> Option<Duration> {
    if let Some(v) = headers.get(GRPC_TIMEOUT).and_then(|v| v.to_str().ok()) {
        let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
        if digits.is_empty() || digits.len() > 8 {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        return Some(match unit {
            "H" => Duration::from_secs(n.saturating_mul(3600)),
            "M" => Duration::from_secs(n.saturating_mul(60)),
            "S" => Duration::from_secs(n),
            "m" => Duration::from_millis(n),
            "u" => Duration::from_micros(n),
            "n" => Duration::from_nanos(n),
            _ => return None,
        });
    }
    let ms: u64 = headers.get(CONNECT_TIMEOUT_MS)?.to_str().ok()?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// The Connect protocol's own headers of a unary request: its version, and its body's encoding.
pub fn check_connect_headers(headers: &HeaderMap) -> ApiResult<()> {
    // The Connect protocol has one version; a client that says another is not speaking it.
    if let Some(version) = headers.get("connect-protocol-version") {
        if version.as_bytes() != b"1" {
            return Err(ApiError::invalid(format!(
                "connect-protocol-version must be \"1\": got {:?}",
                String::from_utf8_lossy(version.as_bytes())
            )));
        }
    }
    Ok(())
}

/// A body in an encoding other than identity (e.g. `Content-Encoding: gzip`) is refused with
/// UNIMPLEMENTED naming the one supported, as Connect servers answer an encoding they do not
/// support (instead of reading compressed bytes as a malformed message).
pub fn check_content_encoding(headers: &HeaderMap) -> ApiResult<()> {
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let encoding = value.to_str().unwrap_or("").trim();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return Err(unsupported_encoding(encoding));
        }
    }
    // HTTP/1.1 transfer codings besides `chunked` (`Transfer-Encoding: gzip, chunked`): the
    // server takes the chunks apart, never the compression under them.
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        for coding in value.to_str().unwrap_or("?").split(',').map(str::trim) {
            if !coding.eq_ignore_ascii_case("chunked") && !coding.eq_ignore_ascii_case("identity") {
                return Err(unsupported_encoding(coding));
            }
        }
    }
    Ok(())
}

/// 501: a body in a content encoding other than identity.
pub(crate) fn unsupported_encoding(encoding: &str) -> ApiError {
    ApiError::bare(
        Kind::Unimplemented,
        format!("unsupported content encoding {encoding:?}: messages are not compressed; send identity"),
    )
}

/// Decodes a request body per protocol: its JSON message (before path parameters and
/// normalization).
pub fn request_json(
    protos: &Protos,
    rpc: &Rpc,
    protocol: Protocol,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Option<serde_json::Value>> {
    let message: Bytes = match protocol {
        Protocol::ConnectJson => return Ok(None),
        Protocol::ConnectProto => body.clone(),
        Protocol::Grpc(Framing::WebText, _) => {
            let compact: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .map_err(|_| ApiError::invalid("invalid gRPC-web-text body: not base64"))?;
            unframe(&Bytes::from(decoded), headers, rpc)?
        }
        Protocol::Grpc(_, _) => unframe(body, headers, rpc)?,
    };
    match protocol.codec() {
        Codec::Proto => decode_request(protos, rpc, &message).map(Some),
        Codec::Json => super::json_message(rpc, &message).map(Some),
    }
}

/// The response of a successful call, encoded per protocol.
pub fn success(protos: &Protos, rpc: &Rpc, protocol: Protocol, value: serde_json::Value) -> ApiResult<Response> {
    let payload = match protocol.codec() {
        Codec::Proto => encode_response(protos, rpc, value)?,
        Codec::Json => serde_json::to_vec(&value).map_err(ApiError::internal)?,
    };
    let body = match protocol {
        Protocol::ConnectJson | Protocol::ConnectProto => Body::from(payload),
        Protocol::Grpc(Framing::Grpc, _) => {
            let mut trailers = HeaderMap::new();
            trailers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
            grpc_body(frame(0, &payload), trailers)
        }
        Protocol::Grpc(framing, _) => {
            let mut bytes = frame(0, &payload);
            bytes.extend(frame(0x80, b"grpc-status:0\r\n"));
            web_body(framing, bytes)
        }
    };
    Ok(with_content_type(Response::new(body), protocol))
}

fn with_content_type(mut response: Response, protocol: Protocol) -> Response {
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(protocol.content_type()));
    if let Protocol::Grpc(..) = protocol {
        response.headers_mut().insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    response
}

fn web_body(framing: Framing, bytes: Vec<u8>) -> Body {
    match framing {
        Framing::WebText => Body::from(base64::engine::general_purpose::STANDARD.encode(bytes)),
        _ => Body::from(bytes),
    }
}

/// A gRPC body: one message, then the trailers.
fn grpc_body(message: Vec<u8>, trailers: HeaderMap) -> Body {
    let frames = futures::stream::iter([
        Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(message))),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    Body::new(http_body_util::StreamBody::new(frames))
}

/// `grpc-message`: percent-encoded outside printable ASCII (and `%` itself).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `grpc-status-details-bin`: a `google.rpc.Status` carrying the `zitadel.v1.ErrorDetail` (id
/// and text) as ZITADEL sends it.
fn status_details(err: &ApiError) -> Vec<u8> {
    use prost::encoding::{encode_key, encode_varint, int32, string, WireType};
    let mut status = Vec::new();
    int32::encode(1, &err.kind.grpc_code(), &mut status);
    string::encode(2, &status_message(err), &mut status);
    if let Some(id) = err.id {
        let mut detail = Vec::new();
        string::encode(1, &id.to_string(), &mut detail);
        string::encode(2, &bounded_text(&err.message).into_owned(), &mut detail);
        let mut any = Vec::new();
        string::encode(1, &"type.googleapis.com/zitadel.v1.ErrorDetail".to_string(), &mut any);
        encode_key(2, WireType::LengthDelimited, &mut any);
        encode_varint(detail.len() as u64, &mut any);
        any.extend_from_slice(&detail);
        encode_key(3, WireType::LengthDelimited, &mut status);
        encode_varint(any.len() as u64, &mut status);
        status.extend_from_slice(&any);
    }
    status
}

/// The most bytes of an error's text a gRPC status carries. `grpc-message` (percent-encoded: up
/// to three times as long) and the details (the text twice, base64) then stay well within the
/// 8 KiB of metadata gRPC clients take by default (grpc-core's soft limit, grpc-java's limit):
/// past it, a client gets RESOURCE_EXHAUSTED instead of the error's code. The JSON transports
/// carry the whole text.
pub const MAX_STATUS_TEXT_BYTES: usize = 1024;

/// `text`, cut to [`MAX_STATUS_TEXT_BYTES`] at a character boundary, with `…` where it was cut.
fn bounded_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_STATUS_TEXT_BYTES {
        return text.into();
    }
    let mut end = MAX_STATUS_TEXT_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// The status's message: the error's text (bounded) and its id, as `full_message` writes them.
fn status_message(err: &ApiError) -> String {
    err.message_with_id(&bounded_text(&err.message))
}

/// The status fields of an error (`grpc-status`, `grpc-message`, `grpc-status-details-bin`).
fn status_fields(err: &ApiError) -> Vec<(HeaderName, HeaderValue)> {
    let mut fields = vec![(GRPC_STATUS, HeaderValue::from(err.kind.grpc_code()))];
    if let Ok(v) = HeaderValue::from_str(&percent_encode(&status_message(err))) {
        fields.push((HeaderName::from_static("grpc-message"), v));
    }
    let details = base64::engine::general_purpose::STANDARD_NO_PAD.encode(status_details(err));
    if let Ok(v) = HeaderValue::from_str(&details) {
        fields.push((HeaderName::from_static("grpc-status-details-bin"), v));
    }
    fields
}

/// A gRPC or gRPC-web error: HTTP 200 with the status in the headers and no message
/// ("Trailers-Only"); `Retry-After` is kept for the 503 of an unavailable database.
pub fn error(err: &ApiError, framing: Framing, codec: Codec) -> Response {
    let mut response = with_content_type(Response::new(Body::empty()), Protocol::Grpc(framing, codec));
    *response.status_mut() = StatusCode::OK;
    for (name, value) in status_fields(err) {
        response.headers_mut().insert(name, value);
    }
    if let Some(secs) = err.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) over the same descriptors, so
/// that `grpcurl`-style tools discover the services without the proto files.
pub fn reflection_router<S: Clone + Send + Sync + 'static>() -> axum::Router<S> {
    let builder =
        || tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set(DESCRIPTOR_SET);
    // A reflection request names a symbol, a file or an extension: a few hundred bytes. Bounded
    // well below the library's 4 MiB, which let a caller without a token make the server hold a
    // 4 MiB request and its answer (which echoes the request's host) per open stream.
    const MAX_REFLECTION_REQUEST: usize = 16 << 10;
    let mut router = axum::Router::new();
    match builder().build_v1() {
        Ok(v1) => {
            let v1 = v1.max_decoding_message_size(MAX_REFLECTION_REQUEST);
            router = router.route_service("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", v1)
        }
        Err(e) => tracing::warn!(error = %e, "gRPC reflection v1 is not served"),
    }
    match builder().build_v1alpha() {
        Ok(v1alpha) => {
            let v1alpha = v1alpha.max_decoding_message_size(MAX_REFLECTION_REQUEST);
            router = router.route_service("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", v1alpha)
        }
        Err(e) => tracing::warn!(error = %e, "gRPC reflection v1alpha is not served"),
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_has_its_protobuf_methods_and_nothing_else() {
        let protos = Protos::load().unwrap();
        let served: std::collections::BTreeSet<String> = super::super::rpcs().iter().map(|r| r.full_name()).collect();
        let declared: std::collections::BTreeSet<String> = protos.method_names().into_iter().collect();
        assert_eq!(served, declared);
    }

    #[test]
    fn long_error_texts_fit_a_clients_metadata() {
        use crate::error::Kind;
        for text in ["é".repeat(5000), "a".repeat(20_000), "😀".repeat(2000), "short".to_string()] {
            let err = ApiError::new(Kind::PermissionDenied, "Errors.Execution.Forwarded", text.clone());
            let fields = status_fields(&err);
            let total: usize = fields.iter().map(|(n, v)| n.as_str().len() + v.len() + 32).sum();
            assert!(total < 8 * 1024, "{} bytes of metadata for a text of {} bytes", total, text.len());
            let message = fields.iter().find(|(n, _)| n == "grpc-message").map(|(_, v)| v.to_str().unwrap()).unwrap();
            let message = percent_encoding::percent_decode_str(message).decode_utf8().unwrap();
            assert!(message.ends_with(" (Errors.Execution.Forwarded)"), "{message}");
            let shown = message.trim_end_matches(" (Errors.Execution.Forwarded)");
            if text.len() <= MAX_STATUS_TEXT_BYTES {
                assert_eq!(shown, text);
            } else {
                assert!(shown.len() <= MAX_STATUS_TEXT_BYTES && shown.ends_with('…'), "{shown}");
                assert!(text.starts_with(shown.trim_end_matches('…')));
            }
            assert_eq!(fields[0].1, HeaderValue::from(err.kind.grpc_code()));
        }
    }

    #[test]
    fn protocols_by_content_type() {
        let p = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            Protocol::from_headers(&h)
        };
        assert_eq!(p("application/grpc"), Protocol::Grpc(Framing::Grpc, Codec::Proto));
        assert_eq!(p("application/grpc+proto"), Protocol::Grpc(Framing::Grpc, Codec::Proto));
        assert_eq!(p("application/grpc+json"), Protocol::Grpc(Framing::Grpc, Codec::Json));
        assert_eq!(p("application/grpc-web"), Protocol::Grpc(Framing::Web, Codec::Proto));
        assert_eq!(p("application/grpc-web+proto"), Protocol::Grpc(Framing::Web, Codec::Proto));
        assert_eq!(p("application/grpc-web-text"), Protocol::Grpc(Framing::WebText, Codec::Proto));
        assert_eq!(p("application/proto"), Protocol::ConnectProto);
        assert_eq!(p("application/json"), Protocol::ConnectJson);
        assert_eq!(p("application/grpc+thrift"), Protocol::ConnectJson);
        assert_eq!(p("Application/GRPC-Web+Proto; charset=x"), Protocol::Grpc(Framing::Web, Codec::Proto));
        assert_eq!(Protocol::from_headers(&HeaderMap::new()), Protocol::ConnectJson);
    }

    #[test]
    fn timeouts() {
        let d = |k: &str, v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            deadline(&h)
        };
        assert_eq!(d("grpc-timeout", "5S"), Some(Duration::from_secs(5)));
        assert_eq!(d("grpc-timeout", "250m"), Some(Duration::from_millis(250)));
        assert_eq!(d("grpc-timeout", "2H"), Some(Duration::from_secs(7200)));
        assert_eq!(d("grpc-timeout", "S"), None);
        assert_eq!(d("grpc-timeout", "123456789S"), None);
        assert_eq!(d("grpc-timeout", "5x"), None);
        assert_eq!(d("connect-timeout-ms", "1500"), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("Action not found (COMMAND-x)"), "Action not found (COMMAND-x)");
        assert_eq!(percent_encode("100% ü"), "100%25 %C3%BC");
    }
}
