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
    fn rooms_and_streams() {
        assert_eq!(validate_room("#General"), Ok("General"));
        assert_eq!(validate_room("General"), Ok("General"));
        assert_eq!(validate_room("#"), Err(NameError::Empty));
        assert_eq!(room_key("General"), "#general");
        assert_eq!(dm_stream("Bob", "alice"), "@alice:bob");
        assert_eq!(dm_stream("alice", "BOB"), dm_stream("bob", "Alice"));
    }
}
