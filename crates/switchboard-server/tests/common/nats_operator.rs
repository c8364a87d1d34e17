//! NATS's operator mode for the credentials test: an operator, an account and a user made
//! with nkeys, their JWTs signed by hand, and a server configuration that trusts them.

/// base64url without padding, as JWTs have it.
fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 4648 base32 without padding (the alphabet of NATS's `jti`).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buf, mut bits) = (String::new(), 0u32, 0u32);
    for &b in bytes {
        buf = ((buf << 8) | u32::from(b)) & 0xffff;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A NATS JWT (what `nsc` writes) for `subject`, signed by `issuer` (ed25519 over
/// `header.claims`); the `jti` is a base32 SHA-512/256 of the claims without it, in the manner
/// of nats-io/jwt.
fn nats_jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use sha2::Digest as _;
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = serde_json::json!({
        "jti": "",
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let hash = sha2::Sha512_256::digest(claims.to_string().as_bytes());
    claims["jti"] = base32(&hash).into();
    let header = b64url(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let signed = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64url(&signature))
}

/// An account JWT with no limits, and with JetStream (-1: unlimited storage, streams and
/// consumers) or without it (nats-server refuses JetStream on the system account).
fn account_jwt(
    operator: &nkeys::KeyPair,
    account: &nkeys::KeyPair,
    name: &str,
    jetstream: bool,
) -> String {
    let mut limits = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[key] = (-1).into();
        }
    }
    let nats = serde_json::json!({"type": "account", "version": 2, "limits": limits});
    nats_jwt(operator, &account.public_key(), name, nats)
}

/// Decentralized auth (operator mode), as `nsc` sets it up: an operator, the chat service's
/// account (with JetStream) and a system account, preloaded into a memory resolver; and a
/// user of the chat account, whose `.creds` file (JWT and seed) is returned.
pub fn operator_mode(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let operator = nkeys::KeyPair::new_operator();
    let (chat, system) = (nkeys::KeyPair::new_account(), nkeys::KeyPair::new_account());
    let user = nkeys::KeyPair::new_user();
    let operator_jwt = nats_jwt(
        &operator,
        &operator.public_key(),
        "test-operator",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let user_jwt = nats_jwt(
        &chat,
        &user.public_key(),
        "switchboard",
        serde_json::json!({
            "type": "user", "version": 2, "pub": {}, "sub": {},
            "subs": -1, "data": -1, "payload": -1,
        }),
    );
    let config = dir.join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "operator: {operator_jwt}\n\
             system_account: {sys}\n\
             resolver: MEMORY\n\
             resolver_preload: {{\n  {chat_pk}: {chat_jwt}\n  {sys}: {sys_jwt}\n}}\n",
            sys = system.public_key(),
            sys_jwt = account_jwt(&operator, &system, "SYS", false),
            chat_pk = chat.public_key(),
            chat_jwt = account_jwt(&operator, &chat, "chat", true),
        ),
    )
    .unwrap();
    let creds = dir.join("switchboard.creds");
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\
             NKEYs are sensitive and should be treated as secrets.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
             *************************************************************\n",
            seed = user.seed().unwrap(),
        ),
    )
    .unwrap();
    (config, creds)
}
