//! User and room names: what is valid, and the case-folded keys that make them unique.

use crate::limits::{MAX_NAME_LEN, MAX_ROOM_LEN};

/// Why a name or a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is longer than {0} characters")]
    TooLong(usize),
    #[error("name may only contain letters, digits, '_', '-' and '.'")]
    BadChar,
}

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn check(s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if !s.chars().all(valid_char) {
        return Err(NameError::BadChar);
    }
    if s.len() > max {
        return Err(NameError::TooLong(max));
    }
    Ok(())
}

/// Checks a user name: 1-32 characters among ASCII letters, digits, `_`, `-` and `.`.
/// Names are unique regardless of case; [`name_key`] gives the folded form.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    check(name, MAX_NAME_LEN)
}

/// The case-folded key under which a name is unique.
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Checks a room name, with or without its leading `#`, and returns it without the `#`.
pub fn validate_room(room: &str) -> Result<&str, NameError> {
    let bare = room.strip_prefix('#').unwrap_or(room);
    check(bare, MAX_ROOM_LEN)?;
    Ok(bare)
}

/// The stream key of a room: `#` and the case-folded name. Assumes a validated name.
pub fn room_key(bare: &str) -> String {
    let mut key = String::with_capacity(bare.len() + 1);
    key.push('#');
    key.push_str(&bare.to_ascii_lowercase());
    key
}

/// The stream key of the two-person conversation between `a` and `b`: `@` and the two folded
/// names in sorted order, so both sides name the same stream.
pub fn dm_stream(a: &str, b: &str) -> String {
    let (a, b) = (name_key(a), name_key(b));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("@{lo}:{hi}")
}

/// Checks a contact: a name of 1-256 bytes without NUL or control characters, and a phone
/// number of 1-20 characters among digits, `+`, spaces, `-`, `(` and `)` with at least one
/// digit. The widths are those of the binary contacts protocol (seed 000), so every contact
/// fits its fields.
pub fn validate_contact(name: &str, phone: Option<&str>) -> Result<(), String> {
    use crate::limits::{MAX_CONTACT_NAME_BYTES, MAX_PHONE_BYTES};
    if name.trim().is_empty() {
        return Err("a contact needs a name".into());
    }
    if name.len() > MAX_CONTACT_NAME_BYTES {
        return Err(format!(
            "a contact name is at most {MAX_CONTACT_NAME_BYTES} bytes"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("a contact name cannot contain control characters".into());
    }
    if let Some(phone) = phone {
        if phone.len() > MAX_PHONE_BYTES {
            return Err(format!(
                "a phone number is at most {MAX_PHONE_BYTES} characters"
            ));
        }
        let ok = |c: char| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')');
        if !phone.chars().all(ok) || !phone.chars().any(|c| c.is_ascii_digit()) {
            return Err("a phone number has digits and only '+', spaces, '-', '(' and ')'".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("A.b_c-9").is_ok());
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(validate_name("a b"), Err(NameError::BadChar));
        assert_eq!(validate_name("é"), Err(NameError::BadChar));
        assert_eq!(validate_name(&"x".repeat(33)), Err(NameError::TooLong(32)));
        assert!(validate_name(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn contacts() {
        assert!(validate_contact("Juan", Some("+55 (85) 99999-9999")).is_ok());
        assert!(validate_contact("Juan", None).is_ok());
        assert!(validate_contact("", Some("1")).is_err());
        assert!(validate_contact("a\0b", Some("1")).is_err());
        assert!(validate_contact(&"x".repeat(257), Some("1")).is_err());
        assert!(
            validate_contact(&"é".repeat(128), Some("1")).is_ok(),
            "256 bytes fit"
        );
        assert!(validate_contact("Juan", Some("call me")).is_err());
        assert!(
            validate_contact("Juan", Some("+-()")).is_err(),
            "needs a digit"
        );
        assert!(validate_contact("Juan", Some(&"1".repeat(21))).is_err());
    }

    #[test]
    fn rooms_and_streams() {
        assert_eq!(validate_room("#General"), Ok("General"));
        assert_eq!(validate_room("General"), Ok("General"));
        assert_eq!(validate_room("#"), Err(NameError::Empty));
        assert_eq!(room_key("General"), "#general");
        assert_eq!(dm_stream("Bob", "alice"), "@alice:bob");
        assert_eq!(dm_stream("alice", "BOB"), dm_stream("bob", "Alice"));
    }
}
