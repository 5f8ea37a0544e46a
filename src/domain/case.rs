//! Key spellings of the JSON forms: protobuf field names (`snake_case`) and their JSON names.

/// The JSON name of a protobuf field name: `primary_domain` → `primaryDomain` (the character after
/// each `_` upper-cased, the `_` dropped); a key without `_` stays as it is.
pub fn lower_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_becomes_lower_camel() {
        assert_eq!(lower_camel("primary_domain"), "primaryDomain");
        assert_eq!(lower_camel("allowed_to_fail"), "allowedToFail");
        assert_eq!(lower_camel("client_id"), "clientId");
        assert_eq!(lower_camel("already"), "already");
        assert_eq!(lower_camel("urn:zitadel:iam:org:id"), "urn:zitadel:iam:org:id");
    }
}
