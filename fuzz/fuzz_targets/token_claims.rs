//! Any claims in a validly signed HS256 token (and any token text at all): verification
//! never panics, answers with an identity or a refusal, accepts only tokens that are not
//! expired, not yet valid, or for another audience or issuer, and reports `sub` as the user.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard_transport::{AuthError, TokenVerifier};

const SECRET: &[u8] = b"fuzz-secret";
const LEEWAY: u64 = 30;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut verifier = TokenVerifier::hs256(SECRET)
        .expect("a non-empty secret")
        .leeway(Duration::from_secs(LEEWAY));
    if mode & 1 == 1 {
        verifier = verifier.audience("switchboard");
    }
    if mode & 2 == 2 {
        verifier = verifier.issuer("https://auth.example");
    }
    if mode & 4 == 4 {
        verifier = verifier.default_channels(["public:*"]);
    }
    if mode & 8 == 8 {
        // The bytes as a whole token: anything a client can put in `?token=`.
        if let Ok(token) = std::str::from_utf8(rest) {
            let _ = verifier.verify(token);
        }
        return;
    }
    // The bytes as the claims of a token signed with the right key.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(rest);
    let message = format!("{header}.{body}");
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .expect("HS256 signs");
    let result = verifier.verify(&format!("{message}.{signature}"));

    // Invalid UTF-8 inside a claim the server ignores does not make a token invalid (the
    // JWT library skips such values unchecked): read the claims as the server sees them.
    let claims: Option<Value> = serde_json::from_str(&String::from_utf8_lossy(rest)).ok();
    let Ok(identity) = result else {
        let refusal = result.unwrap_err();
        assert!(
            !matches!(refusal, AuthError::BadSignature | AuthError::WrongAlgorithm),
            "a correctly signed HS256 token refused as {refusal:?}"
        );
        return;
    };
    let claims = claims.expect("an accepted token has JSON claims");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let exp = claims["exp"].as_u64().expect("an accepted token has a numeric exp");
    assert!(exp.saturating_add(LEEWAY) >= now, "an expired token was accepted: {claims}");
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
        assert!(nbf <= now + LEEWAY, "a token not valid yet was accepted: {claims}");
    }
    if mode & 1 == 1 {
        let aud = &claims["aud"];
        assert!(
            aud == "switchboard"
                || aud
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == "switchboard")),
            "a token for another audience was accepted: {claims}"
        );
    }
    if mode & 2 == 2 {
        assert_eq!(claims["iss"], "https://auth.example", "{claims}");
    }
    assert_eq!(
        identity.user_id.as_deref(),
        claims.get("sub").and_then(Value::as_str),
        "{claims}"
    );
    assert!(identity.expires_at.is_some());
});
