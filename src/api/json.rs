//! protojson conventions: int64 as strings, enums as names or numbers, durations as `"<s>s"`,
//! zero values omitted.

use crate::domain::Duration;
use prost_reflect::MessageDescriptor;
use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use std::fmt;

/// Serde helpers for fields that are 64-bit integers on the wire.
pub mod int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(U64Visitor { max: u64::MAX })
    }
}

pub mod uint64_str {
    use super::*;

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
}

/// A uint32 given as number or string.
pub mod uint32 {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        d.deserialize_any(U64Visitor { max: u32::MAX as u64 }).map(|v| v as u32)
    }
}

/// 2^64 and 2^63 as floats: a JSON number that came as a float (a fraction or an exponent) is in
/// range only strictly below them (`u64::MAX as f64` rounds up to 2^64 itself).
pub(crate) const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

struct U64Visitor {
    max: u64,
}

impl Visitor<'_> for U64Visitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an unsigned integer up to {} (number or string)", self.max)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if v > self.max {
            return Err(E::custom(format!("value {v} out of range (max {})", self.max)));
        }
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        if v < 0 {
            return Err(E::custom(format!("value {v} must not be negative")));
        }
        self.visit_u64(v as u64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() != 0.0 || !(0.0..TWO_POW_64).contains(&v) || v > self.max as f64 {
            // Not echoed: a float prints rounded (2^64 + 1 as 18446744073709552000), not as sent.
            return Err(E::custom(format!("a number that is not an integer from 0 to {}", self.max)));
        }
        Ok(v as u64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let n: u64 = v.trim().parse().map_err(|_| E::custom(format!("invalid integer {v:?}")))?;
        self.visit_u64(n)
    }
}

/// An int64 field kept as its decimal text (a version number in a path): a JSON number or a
/// string of one, anything else a 400 naming the field; absent is empty.
pub mod int64_text {
    use super::*;

    struct Text;

    impl Visitor<'_> for Text {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a 64-bit integer (number or string)")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            i64::try_from(v).map(|v| v.to_string()).map_err(|_| E::custom(format!("value {v} out of range for int64")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            if v.fract() != 0.0 || !(-TWO_POW_63..TWO_POW_63).contains(&v) {
                return Err(E::custom("a number that is not a 64-bit integer"));
            }
            Ok((v as i64).to_string())
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            v.parse::<i64>().map(|n| n.to_string()).map_err(|_| E::custom(format!("invalid int64 {v:?}")))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(Text)
    }
}

/// Durations: only the `"<seconds>s"` string form.
pub mod duration_opt {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Option<Duration>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string like \"10s\" or \"1.5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Duration::parse_saturating(v).map(Some).ok_or_else(|| {
                    E::custom(format!("invalid duration {v:?}: use seconds with an \"s\" suffix, e.g. \"10s\""))
                })
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
        }
        d.deserialize_any(V)
    }
}

/// A number or a string on the wire, kept as text (a number as its decimal digits); a string of
/// digits is taken as it is, or refused (`digit_strings`).
struct NumberOrText {
    digit_strings: bool,
}

impl Visitor<'_> for NumberOrText {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or an enum name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if !self.digit_strings && v.parse::<i64>().is_ok() {
            return Err(E::custom(format!("unknown enum value {v:?}")));
        }
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A value that is a number or a string on the wire (flow and trigger types), kept as text.
pub mod num_or_str {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(NumberOrText { digit_strings: true })
    }
}

/// A protobuf enum field kept as text: its name as sent, or a JSON number as its decimal digits. A
/// JSON string of digits is refused (protojson reads an enum from its name or a number, and `"1"`
/// is neither), so the digits the field holds always came from a number.
pub mod enum_name_or_number {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(NumberOrText { digit_strings: false })
    }
}

/// Declares a protobuf enum: names and numbers in, names out, with an OpenAPI string schema.
#[macro_export]
macro_rules! proto_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $num:literal => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
        #[schema(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            #[default]
            $(#[schema(rename = $text)] $variant),+
        }

        impl $name {
            pub fn number(self) -> i64 {
                match self { $($name::$variant => $num),+ }
            }
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn from_number(n: i64) -> Option<Self> {
                match n { $($num => Some($name::$variant),)+ _ => None }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
            pub fn is_zero(&self) -> bool {
                self.number() == 0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        write!(f, "one of the {} names or numbers", stringify!($name))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_name(v).ok_or_else(|| E::custom(format!("unknown enum value {v:?}")))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<$name, E> {
                        $name::from_number(v).ok_or_else(|| E::custom(format!("unknown enum number {v}")))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<$name, E> {
                        i64::try_from(v).ok().and_then($name::from_number).ok_or_else(|| E::custom(format!("unknown enum number {v}")))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

pub fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

pub fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

pub fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

pub fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

pub fn is_false(v: &bool) -> bool {
    !*v
}

/// Removes `null` members (protojson treats them as unset) so optional handling stays uniform.
pub fn strip_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, val| !val.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A nested message must be a JSON object (serde's derive would also take an array).
pub mod message_opt {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        match value {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::Object(_) => super::nested(value).map(Some).map_err(D::Error::custom),
            other => Err(D::Error::custom(format!("expected an object, got {}", super::kind(&other)))),
        }
    }
}

/// A message's fields taken in by another (`#[serde(flatten, deserialize_with = ...)]`): read
/// through a JSON value so that an error still names the field (serde's flatten loses the path).
pub mod flat_message {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        super::nested(value).map_err(D::Error::custom)
    }
}

/// A repeated nested message: an array of JSON objects.
pub mod messages {
    use serde::de::{DeserializeOwned, Error};
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let serde_json::Value::Array(items) = value else {
            return Err(D::Error::custom(format!("expected an array, got {}", super::kind(&value))));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                if !item.is_object() {
                    return Err(D::Error::custom(super::with_path(
                        &format!("[{i}]"),
                        &format!("expected an object, got {}", super::kind(&item)),
                    )));
                }
                super::nested(item).map_err(|e| D::Error::custom(super::with_path(&format!("[{i}]"), &e)))
            })
            .collect()
    }
}

/// Nested errors carry their inner field path as `\u{1}path\u{1}message`, so that the request
/// parser can name the innermost field even though nested messages go through a JSON value.
const PATH_MARK: char = '\u{1}';

fn with_path(prefix: &str, message: &str) -> String {
    match split_path(message) {
        Some((inner, rest)) => {
            let sep = if inner.starts_with('[') { "" } else { "." };
            format!("{PATH_MARK}{prefix}{sep}{inner}{PATH_MARK}{rest}")
        }
        None => format!("{PATH_MARK}{prefix}{PATH_MARK}{message}"),
    }
}

/// Splits a marked nested error into (inner path, message).
pub fn split_path(message: &str) -> Option<(&str, &str)> {
    let rest = message.strip_prefix(PATH_MARK)?;
    rest.split_once(PATH_MARK)
}

fn nested<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        if path == "." {
            inner
        } else {
            with_path(&path, &inner)
        }
    })
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Finds the path of the first string containing a NUL character (databases cannot store it).
/// With the message's descriptor, only its fields are looked at (a key it does not have is an
/// unknown field, ignored like any other); `Struct`s and maps are free-form and looked at whole.
pub fn find_nul(desc: Option<&MessageDescriptor>, v: &serde_json::Value, path: &mut Vec<String>) -> bool {
    let desc = desc.filter(|d| !d.full_name().starts_with("google.protobuf."));
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
            path.push(format!("[{i}]"));
            let found = find_nul(desc, item, path);
            if !found {
                path.pop();
            }
            found
        }),
        serde_json::Value::Object(map) => map.iter().any(|(k, item)| {
            let inner = match desc {
                None => None,
                Some(d) => match d.get_field_by_json_name(k).or_else(|| d.get_field_by_name(k)) {
                    None => return false,
                    Some(field) if field.is_map() => None,
                    Some(field) => match field.kind() {
                        prost_reflect::Kind::Message(m) => Some(m),
                        _ => None,
                    },
                },
            };
            path.push(k.clone());
            let found = k.contains('\0') || find_nul(inner.as_ref(), item, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

/// A JSON request body read as protobuf's JSON mapping reads it: an object that names a key twice
/// (`{"name": "a", "name": "b"}`) is refused rather than taking the last value, at any depth (a
/// message's fields and a map's or `Struct`'s keys alike).
pub fn from_slice_unique_keys(body: &[u8]) -> serde_json::Result<serde_json::Value> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = UniqueKeys.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct UniqueKeys;

impl<'de> de::DeserializeSeed<'de> for UniqueKeys {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<serde_json::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(UniqueKeys)? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde_json::map::Entry;
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Occupied(taken) => {
                    return Err(de::Error::custom(format_args!("duplicate field \"{}\"", taken.key())))
                }
                Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(UniqueKeys)?);
                }
            }
        }
        Ok(serde_json::Value::Object(object))
    }
}
