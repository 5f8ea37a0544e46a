//! How ZITADEL (Go's `encoding/json`) matches a JSON object's keys to a struct's fields: the
//! field's name exactly, or else in any letter case (`{"Key": …}` fills the field tagged `key`).
//! A target written for ZITADEL may answer either way, so its answers are read the same way here.

use serde_json::{Map, Value};

/// The member named `name`: exactly, or else in another letter case.
pub fn get<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Renames the members of `value` (an object) that match one of `names` only in letter case to
/// that name, unless a member of the exact name is there too (which Go prefers).
pub fn fold_keys(value: &mut Value, names: &[&str]) {
    let Value::Object(map) = value else { return };
    let renames: Vec<(String, &str)> = map
        .keys()
        .filter(|k| !names.contains(&k.as_str()))
        .filter_map(|k| names.iter().find(|n| k.eq_ignore_ascii_case(n)).map(|n| (k.clone(), *n)))
        .collect();
    for (from, to) in renames {
        if map.contains_key(to) {
            continue;
        }
        if let Some(v) = map.remove(&from) {
            map.insert(to.to_string(), v);
        }
    }
}

/// `fold_keys` on each object of the array member `name` of `value`.
pub fn fold_items(value: &mut Value, name: &str, names: &[&str]) {
    if let Some(Value::Array(items)) = value.get_mut(name) {
        for item in items {
            fold_keys(item, names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_in_any_letter_case_the_exact_one_first() {
        let map = json!({"ForwardedStatusCode": 403});
        assert_eq!(get(map.as_object().unwrap(), "forwardedStatusCode"), Some(&json!(403)));
        let both = json!({"key": "exact", "KEY": "other"});
        assert_eq!(get(both.as_object().unwrap(), "key"), Some(&json!("exact")));
        let mut v = json!({"Key": "k", "VALUE": "dg==", "other": 1, "key_x": 2});
        fold_keys(&mut v, &["key", "value"]);
        assert_eq!(v, json!({"key": "k", "value": "dg==", "other": 1, "key_x": 2}));
        let mut v = json!({"key": "exact", "Key": "other"});
        fold_keys(&mut v, &["key"]);
        assert_eq!(v["key"], "exact");
    }
}
