//! Protobuf bytes ↔ protobuf's JSON mapping, directly by descriptor, without building a dynamic
//! message in between (the gRPC and Connect proto transports convert every request and answer).
//! Covers what `proto/` uses: scalars, enums, repeated and map fields, nested messages, and the
//! well-known `Timestamp`, `Duration`, `Struct`, `Value` and `ListValue`. Anything else (a
//! repeated occurrence of a singular message field, a value of the wrong JSON type …) returns
//! `None`, and the caller falls back to prost-reflect's dynamic messages, which decide.

use base64::Engine;
use prost::encoding::{decode_varint, encode_key, encode_varint, WireType};
use prost_reflect::{Kind, MessageDescriptor};
use serde_json::{Map, Number, Value};

/// Deepest nesting of messages (and `Struct`/`ListValue` levels) either direction takes; deeper
/// input goes to the dynamic path, whose decoder refuses it (prost's limit is 100). Above the
/// nesting a JSON body may have (128), so that a context sent as a `Struct` is taken as deep as
/// the same context sent as JSON.
const MAX_DEPTH: u32 = 256;

// ------------------------------------------------------------------------------------------
// JSON → protobuf

/// What encoding needs of every message of a descriptor pool, gathered once: prost-reflect answers
/// a lookup by name by hashing the name, and each `kind()` clones a descriptor, which made the
/// lookups most of an answer's encoding.
pub struct Encoder {
    plans: Vec<Plan>,
    by_name: std::collections::HashMap<String, usize>,
}

/// How one message is written.
enum Plan {
    Timestamp,
    Duration,
    Struct,
    Value,
    ListValue,
    /// Another well-known type: left to the dynamic path.
    Unsupported,
    Fields(Vec<FieldPlan>),
}

struct FieldPlan {
    json_name: Box<str>,
    name: Box<str>,
    number: u32,
    kind: FieldKind,
    shape: Shape,
    /// Whether the field tracks presence (a default value is written when set).
    presence: bool,
}

enum Shape {
    Single,
    List,
    /// A map field: its entries' key and value kinds.
    Map(FieldKind, FieldKind),
}

enum FieldKind {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Sfixed32,
    Fixed64,
    Sfixed64,
    Bool,
    String,
    Bytes,
    /// The enum's values by name.
    Enum(Box<[(Box<str>, i32)]>),
    /// The plan of the message.
    Message(usize),
}

impl FieldKind {
    fn of(kind: &Kind, by_name: &std::collections::HashMap<String, usize>) -> Option<FieldKind> {
        Some(match kind {
            Kind::Double => FieldKind::Double,
            Kind::Float => FieldKind::Float,
            Kind::Int32 => FieldKind::Int32,
            Kind::Int64 => FieldKind::Int64,
            Kind::Uint32 => FieldKind::Uint32,
            Kind::Uint64 => FieldKind::Uint64,
            Kind::Sint32 => FieldKind::Sint32,
            Kind::Sint64 => FieldKind::Sint64,
            Kind::Fixed32 => FieldKind::Fixed32,
            Kind::Sfixed32 => FieldKind::Sfixed32,
            Kind::Fixed64 => FieldKind::Fixed64,
            Kind::Sfixed64 => FieldKind::Sfixed64,
            Kind::Bool => FieldKind::Bool,
            Kind::String => FieldKind::String,
            Kind::Bytes => FieldKind::Bytes,
            Kind::Enum(e) => FieldKind::Enum(e.values().map(|v| (v.name().into(), v.number())).collect()),
            Kind::Message(m) => FieldKind::Message(*by_name.get(m.full_name())?),
        })
    }
}

impl Encoder {
    pub fn new(pool: &prost_reflect::DescriptorPool) -> Encoder {
        let messages: Vec<MessageDescriptor> = pool.all_messages().collect();
        let by_name: std::collections::HashMap<String, usize> =
            messages.iter().enumerate().map(|(i, m)| (m.full_name().to_string(), i)).collect();
        let plans = messages.iter().map(|m| Encoder::plan(m, &by_name)).collect();
        Encoder { plans, by_name }
    }

    fn plan(desc: &MessageDescriptor, by_name: &std::collections::HashMap<String, usize>) -> Plan {
        match desc.full_name() {
            "google.protobuf.Timestamp" => return Plan::Timestamp,
            "google.protobuf.Duration" => return Plan::Duration,
            "google.protobuf.Struct" => return Plan::Struct,
            "google.protobuf.Value" => return Plan::Value,
            "google.protobuf.ListValue" => return Plan::ListValue,
            name if name.starts_with("google.protobuf.") => return Plan::Unsupported,
            _ => {}
        }
        let fields = desc.fields().map(|field| {
            let shape = if field.is_map() {
                let Kind::Message(entry) = field.kind() else { return None };
                Shape::Map(
                    FieldKind::of(&entry.map_entry_key_field().kind(), by_name)?,
                    FieldKind::of(&entry.map_entry_value_field().kind(), by_name)?,
                )
            } else if field.is_list() {
                Shape::List
            } else {
                Shape::Single
            };
            Some(FieldPlan {
                json_name: field.json_name().into(),
                name: field.name().into(),
                number: field.number(),
                kind: FieldKind::of(&field.kind(), by_name)?,
                shape,
                presence: field.supports_presence(),
            })
        });
        fields.collect::<Option<Vec<_>>>().map_or(Plan::Unsupported, Plan::Fields)
    }

    /// The plan of a message of the pool this encoder was built from.
    pub fn plan_of(&self, desc: &MessageDescriptor) -> Option<usize> {
        self.by_name.get(desc.full_name()).copied()
    }

    /// Encodes a JSON message by its plan; `None` when it is not one this encoder takes.
    pub fn encode(&self, plan: usize, value: &Value) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        self.message(plan, value, &mut out, 0)?;
        Some(out)
    }

    fn message(&self, plan: usize, value: &Value, out: &mut Vec<u8>, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let fields = match &self.plans[plan] {
            Plan::Timestamp => return encode_timestamp(value.as_str()?, out),
            Plan::Duration => return encode_duration(value.as_str()?, out),
            Plan::Struct => return encode_struct(value.as_object()?, out, depth),
            Plan::Value => return encode_value(value, out, depth),
            Plan::ListValue => return encode_list(value.as_array()?, out, depth),
            Plan::Unsupported => return None,
            Plan::Fields(fields) => fields,
        };
        for (name, v) in value.as_object()? {
            if v.is_null() {
                continue;
            }
            // By its JSON name, else by its proto name; unknown fields are left out, as the
            // dynamic path does.
            let found =
                fields.iter().find(|f| *f.json_name == **name).or_else(|| fields.iter().find(|f| *f.name == **name));
            let Some(field) = found else { continue };
            match &field.shape {
                Shape::Map(key, value) => {
                    for (k, item) in v.as_object()? {
                        nested(field.number, out, |out| {
                            self.single(1, key, &Value::String(k.clone()), out, true, depth)?;
                            self.single(2, value, item, out, true, depth)
                        })?;
                    }
                }
                Shape::List => {
                    for item in v.as_array()? {
                        self.single(field.number, &field.kind, item, out, true, depth)?;
                    }
                }
                Shape::Single => self.single(field.number, &field.kind, v, out, field.presence, depth)?,
            }
        }
        Some(())
    }

    /// One value of field `n` (a list item, a map key or value, or a singular field); a default
    /// value of a field without presence is left out, as protobuf encoders do.
    fn single(&self, n: u32, kind: &FieldKind, v: &Value, out: &mut Vec<u8>, always: bool, depth: u32) -> Option<()> {
        let varint = |x: u64, out: &mut Vec<u8>| {
            if always || x != 0 {
                encode_key(n, WireType::Varint, out);
                encode_varint(x, out);
            }
        };
        let fixed32 = |bits: u32, out: &mut Vec<u8>| {
            if always || bits != 0 {
                encode_key(n, WireType::ThirtyTwoBit, out);
                out.extend_from_slice(&bits.to_le_bytes());
            }
        };
        let fixed64 = |bits: u64, out: &mut Vec<u8>| {
            if always || bits != 0 {
                encode_key(n, WireType::SixtyFourBit, out);
                out.extend_from_slice(&bits.to_le_bytes());
            }
        };
        match kind {
            FieldKind::Double => fixed64(float_of(v)?.to_bits(), out),
            FieldKind::Float => fixed32((float_of(v)? as f32).to_bits(), out),
            FieldKind::Int32 => varint(i32::try_from(int_of(v)?).ok()? as i64 as u64, out),
            FieldKind::Int64 => varint(i64::try_from(int_of(v)?).ok()? as u64, out),
            FieldKind::Uint32 => varint(u32::try_from(int_of(v)?).ok()? as u64, out),
            FieldKind::Uint64 => varint(u64::try_from(int_of(v)?).ok()?, out),
            FieldKind::Sint32 => {
                let x = i32::try_from(int_of(v)?).ok()?;
                varint(((x << 1) ^ (x >> 31)) as u32 as u64, out)
            }
            FieldKind::Sint64 => {
                let x = i64::try_from(int_of(v)?).ok()?;
                varint(((x << 1) ^ (x >> 63)) as u64, out)
            }
            FieldKind::Fixed32 => fixed32(u32::try_from(int_of(v)?).ok()?, out),
            FieldKind::Sfixed32 => fixed32(i32::try_from(int_of(v)?).ok()? as u32, out),
            FieldKind::Fixed64 => fixed64(u64::try_from(int_of(v)?).ok()?, out),
            FieldKind::Sfixed64 => fixed64(i64::try_from(int_of(v)?).ok()? as u64, out),
            FieldKind::Bool => varint(u64::from(v.as_bool()?), out),
            FieldKind::String => {
                let s = v.as_str()?;
                if always || !s.is_empty() {
                    length_delimited(n, s.as_bytes(), out);
                }
            }
            FieldKind::Bytes => {
                let s = v.as_str()?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
                    .ok()?;
                if always || !bytes.is_empty() {
                    length_delimited(n, &bytes, out);
                }
            }
            FieldKind::Enum(values) => {
                let number = match v {
                    Value::String(name) => values.iter().find(|(value, _)| **value == **name)?.1,
                    other => i32::try_from(int_of(other)?).ok()?,
                };
                varint(number as i64 as u64, out)
            }
            FieldKind::Message(plan) => nested(n, out, |out| self.message(*plan, v, out, depth + 1))?,
        }
        Some(())
    }
}

/// Field `number` holding what `write` appends, written in place: its length is reserved as one
/// byte and moved up when it takes more.
fn nested(number: u32, out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>) -> Option<()>) -> Option<()> {
    encode_key(number, WireType::LengthDelimited, out);
    let at = out.len();
    out.push(0);
    write(out)?;
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(5);
        encode_varint(len as u64, &mut prefix);
        out.splice(at..at + 1, prefix);
    }
    Some(())
}

fn length_delimited(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e19).map(|f| f as i128)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

fn encode_timestamp(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let (seconds, nanos) = crate::domain::time::parse_utc(text).or_else(|| {
        let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
        Some((t.timestamp(), t.timestamp_subsec_nanos()))
    })?;
    encode_seconds_nanos(seconds, nanos as i32, out);
    Some(())
}

fn encode_duration(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let d = crate::domain::Duration::parse(text)?;
    // Truncating division: the nanos carry the seconds' sign, as the Duration message requires.
    encode_seconds_nanos(d.nanos / 1_000_000_000, (d.nanos % 1_000_000_000) as i32, out);
    Some(())
}

/// The fields of `Timestamp` and `Duration`: `seconds = 1`, `nanos = 2`.
fn encode_seconds_nanos(seconds: i64, nanos: i32, out: &mut Vec<u8>) {
    if seconds != 0 {
        encode_key(1, WireType::Varint, out);
        encode_varint(seconds as u64, out);
    }
    if nanos != 0 {
        encode_key(2, WireType::Varint, out);
        encode_varint(nanos as i64 as u64, out);
    }
}

fn encode_struct(map: &Map<String, Value>, out: &mut Vec<u8>, depth: u32) -> Option<()> {
    for (k, v) in map {
        nested(1, out, |entry| {
            length_delimited(1, k.as_bytes(), entry);
            nested(2, entry, |value| encode_value(v, value, depth + 1))
        })?;
    }
    Some(())
}

fn encode_list(items: &[Value], out: &mut Vec<u8>, depth: u32) -> Option<()> {
    for v in items {
        nested(1, out, |value| encode_value(v, value, depth + 1))?;
    }
    Some(())
}

fn encode_value(v: &Value, out: &mut Vec<u8>, depth: u32) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match v {
        Value::Null => {
            encode_key(1, WireType::Varint, out);
            encode_varint(0, out);
        }
        Value::Number(n) => {
            encode_key(2, WireType::SixtyFourBit, out);
            out.extend_from_slice(&n.as_f64()?.to_le_bytes());
        }
        Value::String(s) => length_delimited(3, s.as_bytes(), out),
        Value::Bool(b) => {
            encode_key(4, WireType::Varint, out);
            encode_varint(u64::from(*b), out);
        }
        Value::Object(map) => nested(5, out, |bytes| encode_struct(map, bytes, depth))?,
        Value::Array(items) => nested(6, out, |bytes| encode_list(items, bytes, depth))?,
    }
    Some(())
}

// ------------------------------------------------------------------------------------------
// protobuf → JSON

/// Decodes a message into its JSON mapping (lowerCamelCase names, 64-bit integers as strings,
/// enums by name, unset fields left out); `None` when it is not one this decoder takes.
pub fn decode(desc: &MessageDescriptor, bytes: &[u8]) -> Option<Value> {
    decode_message(desc, bytes, 0)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        decode_varint(&mut self.buf).ok()
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn key(&mut self) -> Option<(u32, u8)> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).ok().filter(|n| *n > 0)?;
        Some((number, (key & 7) as u8))
    }
    /// The payload of a field with wire type `wire`: its varint / fixed bits or bytes.
    fn payload(&mut self, wire: u8) -> Option<Payload<'a>> {
        Some(match wire {
            0 => Payload::Varint(self.varint()?),
            1 => Payload::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Payload::Bytes(self.take(len)?)
            }
            5 => Payload::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            _ => return None, // groups (3, 4) are not used by proto3
        })
    }
}

enum Payload<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

fn decode_message(desc: &MessageDescriptor, bytes: &[u8], depth: u32) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    match desc.full_name() {
        "google.protobuf.Timestamp" => return decode_timestamp(bytes),
        "google.protobuf.Duration" => return decode_duration(bytes),
        "google.protobuf.Struct" => return decode_struct(bytes, depth).map(Value::Object),
        "google.protobuf.Value" => return decode_value(bytes, depth),
        "google.protobuf.ListValue" => return decode_list(bytes, depth).map(Value::Array),
        name if name.starts_with("google.protobuf.") => return None,
        _ => {}
    }
    let mut out = Map::new();
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let (number, wire) = r.key()?;
        let payload = r.payload(wire)?;
        let Some(field) = desc.get_field(number) else { continue }; // unknown: skipped
        let name = field.json_name();
        if field.is_map() {
            let Payload::Bytes(entry) = payload else { return None };
            let Kind::Message(entry_desc) = field.kind() else { return None };
            let (key, value) = decode_map_entry(&entry_desc, entry, depth)?;
            out.entry(name.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()?
                .insert(key, value);
        } else if field.is_list() {
            let list = out.entry(name.to_string()).or_insert_with(|| Value::Array(Vec::new())).as_array_mut()?;
            match payload {
                // Packed scalars.
                Payload::Bytes(packed) if is_packable(&field.kind()) => {
                    let mut pr = Reader { buf: packed };
                    let wire = packed_wire(&field.kind());
                    while !pr.buf.is_empty() {
                        list.push(scalar(&field.kind(), pr.payload(wire)?)?);
                    }
                }
                other => list.push(single(&field.kind(), other, depth)?),
            }
        } else {
            if out.contains_key(name) {
                return None; // a repeated singular field (merge semantics): the dynamic path decides
            }
            if let Some(oneof) = field.containing_oneof() {
                if oneof.fields().any(|f| f.number() != number && out.contains_key(f.json_name())) {
                    return None; // two members of one oneof: the dynamic path decides
                }
            }
            let default = match &payload {
                Payload::Varint(x) | Payload::Fixed64(x) => *x == 0,
                Payload::Fixed32(x) => *x == 0,
                Payload::Bytes(b) => b.is_empty() && !matches!(field.kind(), Kind::Message(_)),
            };
            let value = single(&field.kind(), payload, depth)?;
            if field.supports_presence() || !default {
                out.insert(name.to_string(), value);
            }
        }
    }
    // Oneof members and explicit-presence fields keep even their default values (present);
    // plain proto3 fields never appear at their default.
    Some(Value::Object(out))
}

/// The path of the first field (proto names, dot-separated) whose bytes do not fit its
/// declaration: a wrong wire type, text that is not UTF-8, or a nested message that does not
/// decode. None when no field can be blamed (a broken key or length, or nothing wrong here).
/// Only asked once a message failed to decode, so that the error names the field as JSON
/// errors do.
pub fn misfit_field(desc: &MessageDescriptor, bytes: &[u8]) -> Option<String> {
    misfit_in(desc, bytes, 0)
}

fn misfit_in(desc: &MessageDescriptor, bytes: &[u8], depth: u32) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let (number, wire) = r.key()?;
        let payload = r.payload(wire)?;
        let Some(field) = desc.get_field(number) else { continue };
        let kind = field.kind();
        let fits = match (&kind, &payload) {
            (Kind::String, Payload::Bytes(b)) => std::str::from_utf8(b).is_ok(),
            (Kind::Bytes | Kind::Message(_), Payload::Bytes(_)) => true,
            (k, Payload::Bytes(packed)) if field.is_list() && is_packable(k) => {
                let mut pr = Reader { buf: packed };
                let wire = packed_wire(k);
                std::iter::from_fn(|| (!pr.buf.is_empty()).then(|| pr.payload(wire).is_some())).all(|ok| ok)
            }
            (k, Payload::Varint(_)) => packed_wire(k) == 0 && is_packable(k),
            (k, Payload::Fixed64(_)) => packed_wire(k) == 1,
            (k, Payload::Fixed32(_)) => packed_wire(k) == 5,
            _ => false,
        };
        if !fits {
            return Some(field.name().to_string());
        }
        if let (Kind::Message(m), Payload::Bytes(b)) = (&kind, &payload) {
            if let Some(inner) = misfit_in(m, b, depth + 1) {
                // A map entry's own fields (key, value) are not part of the path.
                return Some(if field.is_map() {
                    field.name().to_string()
                } else {
                    format!("{}.{inner}", field.name())
                });
            }
        }
    }
    None
}

fn is_packable(kind: &Kind) -> bool {
    !matches!(kind, Kind::String | Kind::Bytes | Kind::Message(_))
}

fn packed_wire(kind: &Kind) -> u8 {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => 1,
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => 5,
        _ => 0,
    }
}

fn decode_map_entry(entry: &MessageDescriptor, bytes: &[u8], depth: u32) -> Option<(String, Value)> {
    let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
    let mut key = None;
    let mut value = None;
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let (number, wire) = r.key()?;
        let payload = r.payload(wire)?;
        if number == 1 {
            key = Some(single(&key_field.kind(), payload, depth)?);
        } else if number == 2 {
            value = Some(single(&value_field.kind(), payload, depth)?);
        }
    }
    let key = match key {
        Some(Value::String(s)) => s,
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return None,
        None => default_json(&key_field.kind(), depth)?.as_str().map(String::from).unwrap_or_else(|| "0".into()),
    };
    let value = match value {
        Some(v) => v,
        None => default_json(&value_field.kind(), depth)?,
    };
    Some((key, value))
}

/// The JSON of a kind's default value (a map entry without its value).
fn default_json(kind: &Kind, depth: u32) -> Option<Value> {
    Some(match kind {
        Kind::String | Kind::Bytes => Value::String(String::new()),
        Kind::Bool => Value::Bool(false),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => Value::String("0".into()),
        Kind::Enum(e) => Value::String(e.default_value().name().to_string()),
        Kind::Message(m) => decode_message(m, &[], depth + 1)?,
        _ => Value::Number(0.into()),
    })
}

fn single(kind: &Kind, payload: Payload<'_>, depth: u32) -> Option<Value> {
    match (kind, payload) {
        (Kind::String, Payload::Bytes(b)) => Some(Value::String(std::str::from_utf8(b).ok()?.to_string())),
        (Kind::Bytes, Payload::Bytes(b)) => Some(Value::String(base64::engine::general_purpose::STANDARD.encode(b))),
        (Kind::Message(m), Payload::Bytes(b)) => decode_message(m, b, depth + 1),
        (_, Payload::Bytes(_)) => None,
        (kind, payload) => scalar(kind, payload),
    }
}

fn float_json(f: f64) -> Value {
    if f.is_nan() {
        Value::String("NaN".into())
    } else if f.is_infinite() {
        Value::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else if f.fract() == 0.0 && f.abs() < 2f64.powi(63) {
        // A whole number is written without a fraction (`1`, not `1.0`), as protobuf's JSON
        // mapping writes it, so that it reads the same as when the client sent JSON. Every whole
        // double below 2^63 is exactly an i64 (above 2^53 not every i64 is a double, but every
        // such double is an i64); beyond, the shortest exponent form (`1e19`) has no fraction.
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
    }
}

fn scalar(kind: &Kind, payload: Payload<'_>) -> Option<Value> {
    Some(match (kind, payload) {
        (Kind::Double, Payload::Fixed64(b)) => float_json(f64::from_bits(b)),
        (Kind::Float, Payload::Fixed32(b)) => float_json(f64::from(f32::from_bits(b))),
        (Kind::Int32, Payload::Varint(x)) => Value::from(x as i64 as i32),
        (Kind::Int64, Payload::Varint(x)) => Value::String((x as i64).to_string()),
        (Kind::Uint32, Payload::Varint(x)) => Value::from(x as u32),
        (Kind::Uint64, Payload::Varint(x)) => Value::String(x.to_string()),
        (Kind::Sint32, Payload::Varint(x)) => {
            let x = x as u32;
            Value::from(((x >> 1) as i32) ^ -((x & 1) as i32))
        }
        (Kind::Sint64, Payload::Varint(x)) => Value::String((((x >> 1) as i64) ^ -((x & 1) as i64)).to_string()),
        (Kind::Fixed32, Payload::Fixed32(b)) => Value::from(b),
        (Kind::Sfixed32, Payload::Fixed32(b)) => Value::from(b as i32),
        (Kind::Fixed64, Payload::Fixed64(b)) => Value::String(b.to_string()),
        (Kind::Sfixed64, Payload::Fixed64(b)) => Value::String((b as i64).to_string()),
        (Kind::Bool, Payload::Varint(x)) => Value::Bool(x != 0),
        (Kind::Enum(e), Payload::Varint(x)) => {
            let number = x as i64 as i32;
            match e.get_value(number) {
                Some(v) => Value::String(v.name().to_string()),
                None => Value::from(number),
            }
        }
        _ => return None,
    })
}

fn seconds_nanos(bytes: &[u8]) -> Option<(i64, i32)> {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let (number, wire) = r.key()?;
        match (number, r.payload(wire)?) {
            (1, Payload::Varint(x)) => seconds = x as i64,
            (2, Payload::Varint(x)) => nanos = x as i64 as i32,
            _ => {}
        }
    }
    Some((seconds, nanos))
}

/// Nanoseconds as protobuf's JSON writes them: 0, 3, 6 or 9 digits.
fn fraction(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

/// Whether `seconds` and `nanos` are a `Timestamp` protobuf's JSON mapping can write: years 1 to
/// 9999, nanos from 0 to 999,999,999.
pub(crate) fn timestamp_fits(seconds: i64, nanos: i64) -> bool {
    let range = crate::domain::time::TIMESTAMP_RANGE;
    let whole_seconds = range.start().div_euclid(1_000_000)..=range.end().div_euclid(1_000_000);
    (0..1_000_000_000).contains(&nanos) && whole_seconds.contains(&seconds)
}

/// Whether `seconds` and `nanos` are a `Duration` protobuf's JSON mapping can write: at most
/// 10,000 years either way, nanos below a second and of the seconds' sign.
pub(crate) fn duration_fits(seconds: i64, nanos: i64) -> bool {
    seconds.unsigned_abs() <= crate::domain::duration::MAX_SECONDS as u64
        && nanos.unsigned_abs() < 1_000_000_000
        && !(seconds > 0 && nanos < 0)
        && !(seconds < 0 && nanos > 0)
}

fn decode_timestamp(bytes: &[u8]) -> Option<Value> {
    let (seconds, nanos) = seconds_nanos(bytes)?;
    if !timestamp_fits(seconds, i64::from(nanos)) {
        return None;
    }
    let nanos = nanos as u32;
    let t = chrono::DateTime::from_timestamp(seconds, 0)?;
    Some(Value::String(format!("{}{}Z", t.format("%Y-%m-%dT%H:%M:%S"), fraction(nanos))))
}

fn decode_duration(bytes: &[u8]) -> Option<Value> {
    let (seconds, nanos) = seconds_nanos(bytes)?;
    if !duration_fits(seconds, i64::from(nanos)) {
        return None;
    }
    let nanos = seconds.checked_mul(1_000_000_000)?.checked_add(i64::from(nanos))?;
    Some(Value::String(crate::domain::Duration { nanos }.to_string()))
}

fn decode_struct(bytes: &[u8], depth: u32) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let (number, wire) = r.key()?;
        let Payload::Bytes(entry) = r.payload(wire)? else { continue };
        if number != 1 {
            continue;
        }
        let (mut key, mut value) = (String::new(), Value::Null);
        let mut er = Reader { buf: entry };
        while !er.buf.is_empty() {
            let (n, w) = er.key()?;
            match (n, er.payload(w)?) {
                (1, Payload::Bytes(k)) => key = std::str::from_utf8(k).ok()?.to_string(),
                (2, Payload::Bytes(v)) => value = decode_value(v, depth + 1)?,
                _ => {}
            }
        }
        out.insert(key, value);
    }
    Some(out)
}

fn decode_list(bytes: &[u8], depth: u32) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let (number, wire) = r.key()?;
        let payload = r.payload(wire)?;
        if let (1, Payload::Bytes(v)) = (number, payload) {
            out.push(decode_value(v, depth + 1)?);
        }
    }
    Some(out)
}

fn decode_value(bytes: &[u8], depth: u32) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut value = None;
    let mut r = Reader { buf: bytes };
    while !r.buf.is_empty() {
        let (number, wire) = r.key()?;
        value = Some(match (number, r.payload(wire)?) {
            (1, Payload::Varint(_)) => Value::Null,
            (2, Payload::Fixed64(b)) => {
                let f = f64::from_bits(b);
                // A Value cannot hold NaN or an infinity in JSON.
                if !f.is_finite() {
                    return None;
                }
                float_json(f)
            }
            (3, Payload::Bytes(s)) => Value::String(std::str::from_utf8(s).ok()?.to_string()),
            (4, Payload::Varint(x)) => Value::Bool(x != 0),
            (5, Payload::Bytes(s)) => Value::Object(decode_struct(s, depth)?),
            (6, Payload::Bytes(l)) => Value::Array(decode_list(l, depth)?),
            _ => continue,
        });
    }
    // A Value with no kind set has no JSON form.
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_reflect::{DeserializeOptions, DynamicMessage, SerializeOptions};
    use serde_json::json;

    fn pool() -> prost_reflect::DescriptorPool {
        prost_reflect::DescriptorPool::decode(super::super::grpc::DESCRIPTOR_SET).unwrap()
    }

    fn encode(desc: &MessageDescriptor, v: &Value) -> Option<Vec<u8>> {
        let encoder = Encoder::new(desc.parent_pool());
        encoder.encode(encoder.plan_of(desc).expect("a message of the pool"), v)
    }

    fn dynamic_encode(desc: &MessageDescriptor, v: &Value) -> Vec<u8> {
        DynamicMessage::deserialize_with_options(desc.clone(), v.clone(), &DeserializeOptions::new())
            .unwrap()
            .encode_to_vec()
    }

    /// prost-reflect's JSON, with whole doubles written as integers (`1`, not `1.0`), as protobuf's
    /// JSON mapping and the fast path write them.
    fn dynamic_decode(desc: &MessageDescriptor, b: &[u8]) -> Value {
        fn wholes(v: Value) -> Value {
            match v {
                Value::Number(n) if n.is_f64() => float_json(n.as_f64().unwrap()),
                Value::Array(items) => Value::Array(items.into_iter().map(wholes).collect()),
                Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, wholes(v))).collect()),
                other => other,
            }
        }
        wholes(
            DynamicMessage::decode(desc.clone(), b)
                .unwrap()
                .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
                .unwrap(),
        )
    }

    /// Both directions agree with prost-reflect: the same message after encoding, the same JSON
    /// after decoding.
    #[track_caller]
    fn same_as_dynamic(message: &str, v: Value) {
        let desc = pool().get_message_by_name(message).unwrap();
        let fast = encode(&desc, &v).expect("fast encode");
        let dynamic = dynamic_encode(&desc, &v);
        assert_eq!(
            DynamicMessage::decode(desc.clone(), fast.as_slice()).unwrap(),
            DynamicMessage::decode(desc.clone(), dynamic.as_slice()).unwrap(),
            "{message} {v}"
        );
        assert_eq!(decode(&desc, &dynamic).expect("fast decode"), dynamic_decode(&desc, &dynamic), "{message} {v}");
        assert_eq!(decode(&desc, &fast).expect("fast decode"), dynamic_decode(&desc, &dynamic), "{message} {v}");
    }

    #[test]
    fn whole_doubles_have_no_fraction() {
        for (f, text) in [
            (1.0, "1"),
            (-0.0, "0"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (-9_007_199_254_740_994.0, "-9007199254740994"),
            (9_999_999_999_999_998.0, "9999999999999998"),
            (1e16, "10000000000000000"),
            (9.223_372_036_854_775e18, "9223372036854774784"),
            (2f64.powi(63), "9.223372036854776e+18"),
            (1e300, "1e+300"),
            (0.5, "0.5"),
        ] {
            assert_eq!(float_json(f).to_string(), text, "{f}");
        }
    }

    #[test]
    fn the_misfit_field_is_named_by_its_path() {
        let pool = pool();
        let get = pool.get_message_by_name("zitadel.management.v1.GetActionRequest").unwrap();
        assert_eq!(misfit_field(&get, &[0x08, 0x05]).as_deref(), Some("id"));
        assert_eq!(misfit_field(&get, &[0x0a, 0x01, 0xff]).as_deref(), Some("id"), "not UTF-8");
        assert_eq!(misfit_field(&get, &[0x0a, 0x01, b'x']), None, "nothing wrong");
        assert_eq!(misfit_field(&get, &[0x0a, 0x05, b'x']), None, "a broken length blames no field");
        let list = pool.get_message_by_name("zitadel.management.v1.ListActionsRequest").unwrap();
        // query { limit: "A" } (limit is a uint32, sent length-delimited)
        assert_eq!(misfit_field(&list, &[0x0a, 0x03, 0x12, 0x01, b'A']).as_deref(), Some("query.limit"));
        // query { limit: 5 } is fine.
        assert_eq!(misfit_field(&list, &[0x0a, 0x02, 0x10, 0x05]), None);
    }

    #[test]
    fn messages_of_every_shape() {
        same_as_dynamic(
            "zitadel.action.v1.Action",
            json!({"id": "123", "details": {"sequence": "42", "creationDate": "2026-12-03T10:11:12.345Z", "changeDate": "2026-12-03T10:11:12.123456789Z", "resourceOwner": "9"},
                   "state": "ACTION_STATE_INACTIVE", "name": "n", "script": "s", "timeout": "2.500s", "allowedToFail": true, "version": "7"}),
        );
        same_as_dynamic(
            "zitadel.action.v1.Action",
            json!({"timeout": "-1.000000001s", "allowedToFail": false, "state": 1}),
        );
        same_as_dynamic(
            "zitadel.management.v1.ExecuteFlowTriggerRequest",
            json!({"flowType": "2", "triggerType": "4", "context": {"a": null, "b": 1.5, "c": "x", "d": true, "e": {"f": [1, "two", {"g": []}, null]}, "h": {}}}),
        );
        same_as_dynamic(
            "zitadel.management.v1.ListActionsRequest",
            json!({"query": {"offset": "10", "limit": 5, "asc": true}, "sortingColumn": "ACTION_FIELD_NAME_NAME",
                   "queries": [{"actionNameQuery": {"name": "", "method": "TEXT_QUERY_METHOD_EQUALS"}}, {"actionStateQuery": {"state": "ACTION_STATE_ACTIVE"}}]}),
        );
        same_as_dynamic(
            "zitadel.management.v1.TestActionRequest",
            json!({"actionId": "", "secrets": {"a": "1", "b": ""}, "context": {"x": {"y": "z"}}, "timeout": "0s"}),
        );
        same_as_dynamic(
            "zitadel.management.v1.SetTriggerActionsRequest",
            json!({"flowType": "1", "triggerType": "1", "actionIds": ["1", "2"]}),
        );
    }

    #[test]
    fn timestamps_and_durations_in_protobuf_json_form() {
        let desc = pool().get_message_by_name("zitadel.v1.ObjectDetails").unwrap();
        for (input, output) in [
            ("2026-12-03T10:11:12Z", "2026-12-03T10:11:12Z"),
            ("2026-12-03T10:11:12.5Z", "2026-12-03T10:11:12.500Z"),
            ("2026-12-03T10:11:12.123456Z", "2026-12-03T10:11:12.123456Z"),
            ("2026-12-03T11:11:12.000000001+01:00", "2026-12-03T10:11:12.000000001Z"),
        ] {
            let bytes = encode(&desc, &json!({"creationDate": input})).unwrap();
            assert_eq!(decode(&desc, &bytes).unwrap(), json!({"creationDate": output}));
        }
        assert!(
            encode(&desc, &json!({"creationDate": "yesterday"})).is_none(),
            "not RFC 3339: the dynamic path decides"
        );
    }

    #[test]
    fn deep_nesting_is_left_to_the_dynamic_path() {
        let desc = pool().get_message_by_name("zitadel.management.v1.ExecuteFlowTriggerRequest").unwrap();
        // A Value holding a ListValue holding a Value … 2,000 levels deep, a few bytes each.
        let mut value: Vec<u8> = vec![0x20, 0x01]; // bool_value: true
        for _ in 0..2_000 {
            let mut list = vec![0x0a];
            encode_varint(value.len() as u64, &mut list);
            list.extend_from_slice(&value);
            let mut next = vec![0x32];
            encode_varint(list.len() as u64, &mut next);
            next.extend_from_slice(&list);
            value = next;
        }
        let mut entry = vec![0x0a, 0x01, b'k', 0x12];
        encode_varint(value.len() as u64, &mut entry);
        entry.extend_from_slice(&value);
        let mut context = vec![0x0a];
        encode_varint(entry.len() as u64, &mut context);
        context.extend_from_slice(&entry);
        let mut request = vec![0x1a];
        encode_varint(context.len() as u64, &mut request);
        request.extend_from_slice(&context);
        assert!(decode(&desc, &request).is_none());
        assert!(
            DynamicMessage::decode(desc.clone(), request.as_slice()).is_err(),
            "and the dynamic decoder refuses it"
        );
        let mut deep = json!(true);
        for _ in 0..300 {
            deep = json!([deep]);
        }
        assert!(encode(&desc, &json!({"context": {"k": deep}})).is_none());
    }

    #[test]
    fn malformed_bytes_are_refused_not_misread() {
        let desc = pool().get_message_by_name("zitadel.action.v1.Action").unwrap();
        for bytes in [&[0x0a, 0x05, b'a'][..], &[0x08][..], &[0x00, 0x01][..], &[0x0b][..]] {
            assert!(decode(&desc, bytes).is_none(), "{bytes:?}");
        }
    }
}
