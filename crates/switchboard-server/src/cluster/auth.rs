//! The peer handshake's proofs: HMAC-SHA256 with the cluster secret over a fresh nonce of the
//! other side and both node names, so a proof is bound to this handshake and direction.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// A fresh random nonce, hex-encoded (32 bytes).
pub(crate) fn nonce() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

fn mac_of(secret: &str, nonce: &str, prover: &str, verifier: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    for part in ["switchboard-peer-v1", nonce, prover, verifier] {
        mac.update(&(part.len() as u32).to_be_bytes());
        mac.update(part.as_bytes());
    }
    mac
}

/// The proof that `prover` holds the secret, answering `verifier`'s nonce.
pub(crate) fn prove(secret: &str, nonce: &str, prover: &str, verifier: &str) -> String {
    hex(&mac_of(secret, nonce, prover, verifier)
        .finalize()
        .into_bytes())
}

/// Checks a proof in constant time.
pub(crate) fn verify(secret: &str, nonce: &str, prover: &str, verifier: &str, proof: &str) -> bool {
    let Some(bytes) = unhex(proof) else {
        return false;
    };
    mac_of(secret, nonce, prover, verifier)
        .verify_slice(&bytes)
        .is_ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_bind_secret_nonce_and_direction() {
        let n = nonce();
        assert_eq!(n.len(), 64);
        let p = prove("s3cret", &n, "a", "b");
        assert!(verify("s3cret", &n, "a", "b", &p));
        assert!(!verify("other", &n, "a", "b", &p), "wrong secret");
        assert!(
            !verify("s3cret", &nonce(), "a", "b", &p),
            "replayed against a new nonce"
        );
        assert!(!verify("s3cret", &n, "b", "a", &p), "reflected back");
        assert!(!verify("s3cret", &n, "a", "b", "zz"), "garbage");
    }
}
