//! jsonwebtoken picks its crypto backend from its features only when exactly one is compiled
//! in, and otherwise panics at the first verification. A verifier installs the RustCrypto
//! provider itself, so a host that also enables `aws_lc_rs` cannot make it panic. (Its own
//! test binary: the provider is process-wide.)

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
use switchboard_transport::TokenVerifier;

#[test]
fn building_a_verifier_installs_a_crypto_provider_explicitly() {
    let _verifier = TokenVerifier::hs256("a-secret-long-enough-for-hs256!!").unwrap();
    assert!(
        DEFAULT_PROVIDER.install_default().is_err(),
        "a provider is installed once a verifier exists"
    );
}

#[test]
fn a_provider_the_host_installed_first_is_kept() {
    // Whichever test runs first, a second install is refused and verification works.
    let _ = DEFAULT_PROVIDER.install_default();
    let verifier = TokenVerifier::hs256("a-secret-long-enough-for-hs256!!").unwrap();
    assert!(matches!(
        verifier.verify("not.a.token"),
        Err(switchboard_transport::AuthError::Malformed)
    ));
}
