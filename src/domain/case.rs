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

/// The protobuf field name of a JSON key: `camelCase` → `snake_case` (`projectID` → `project_id`); snake_case stays as it is.
pub fn snake(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::with_capacity(key.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_ascii_uppercase()) && next.is_some_and(|n| n.is_ascii_lowercase()));
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
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

    #[test]
    fn snake_case_conversion() {
        assert_eq!(snake("isEmailVerified"), "is_email_verified");
        assert_eq!(snake("projectID"), "project_id");
        assert_eq!(snake("projectGrantId"), "project_grant_id");
        assert_eq!(snake("primary_domain"), "primary_domain");
        assert_eq!(snake("id"), "id");
        assert_eq!(snake("loginNames"), "login_names");
    }
}
