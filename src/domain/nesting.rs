//! How deep a JSON value nests: what parsers and protobuf decoders bound.

use serde_json::Value;

/// The deepest nesting a JSON request body may have: serde_json's recursion limit (128) refuses
/// the 128th level. Protobuf requests are held to the same, so that a message means the same
/// thing whichever form carried it.
pub const JSON_MAX: usize = 127;

/// Whether serde_json refused a text for nesting past its recursion limit (it has no error
/// category of its own for that: the text says so).
pub fn too_deep(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("recursion limit exceeded")
}

/// Levels of arrays and objects in `v` (a scalar is 0, `[1]` is 1, `{"a": [1]}` is 2).
pub fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::depth;
    use serde_json::json;

    #[test]
    fn levels_of_arrays_and_objects() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([1])), 1);
        assert_eq!(depth(&json!({"a": [1], "b": 2})), 2);
        assert_eq!(depth(&json!([[], [[[]]]])), 4);
    }
}
