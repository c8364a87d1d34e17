//! Password hashing with argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes), run on
//! the blocking pool so that a sign-in never stalls the connections of others.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use switchboard_proto::{ErrorCode, ProtoError};

/// Hashes a new password into a PHC string.
pub(crate) async fn hash(password: String) -> Result<String, ProtoError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(|| ProtoError::new(ErrorCode::Internal, "could not hash the password"))
}

/// Checks a password against a stored PHC string.
pub(crate) async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}
