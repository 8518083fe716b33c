//! Stripe's `Stripe-Signature` check: HMAC-SHA256 over `"{t}.{body}"`,
//! hex, any `v1` may match, the timestamp at most 300 s from now.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance between the signed timestamp and now.
pub const TOLERANCE_S: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("this server has no Stripe webhook secret configured")]
    NotConfigured,
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signed timestamp is more than 300 s from now (a replay, or a clock problem)")]
    OutsideTolerance,
    #[error("no v1 signature matches")]
    Mismatch,
}

/// The hex HMAC-SHA256 of `"{t}.{body}"`, as Stripe signs it.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies `Stripe-Signature: t=…,v1=…[,v1=…]` over the raw body: any `v1`
/// may match (Stripe sends several while a secret is rolled).
pub fn verify(secret: &str, header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // abs_diff: a timestamp near i64::MIN must not wrap into the window.
    if now.abs_diff(timestamp) > TOLERANCE_S.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance);
    }
    let expected = sign(secret, timestamp, body);
    if signatures
        .iter()
        .any(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Just;
    use proptest::strategy::Strategy;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn signatures_verify_within_the_tolerance_and_any_v1_may_match() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign(SECRET, 1_000, body);
        let header = format!("t=1000,v1=deadbeef,v1={good},v0=old");
        assert_eq!(verify(SECRET, Some(&header), body, 1_000 + 300), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), body, 1_000 - 300), Ok(()));
        assert_eq!(
            verify(SECRET, Some(&header), body, 1_000 + 301),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            verify(SECRET, Some(&header), br#"{"id":"evt_2"}"#, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("whsec_other", Some(&header), body, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some("v1=abc"), body, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, Some("t=1000"), body, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(verify(SECRET, None, body, 1_000), Err(SignatureError::Missing));
    }

    /// A header made by Stripe's own Node library
    /// (`stripe.webhooks.generateTestHeaderString`, stripe 17), which its
    /// `constructEvent` accepts.
    #[test]
    fn verifies_what_stripes_library_signs() {
        let payload = br#"{"id":"evt_1","type":"customer.subscription.created","created":1700000000}"#;
        let header = "t=1700000000,v1=8d8b153237d405de7bdd40aebd8a60aef536515bb595d4876cdf5f88a87912ec";
        let secret = "whsec_stripe_test_endpoint_secret";
        assert_eq!(verify(secret, Some(header), payload, 1_700_000_000), Ok(()));
        assert_eq!(
            format!("t=1700000000,v1={}", sign(secret, 1_700_000_000, payload)),
            header
        );
        assert_eq!(
            verify(secret, Some(header), payload, 1_700_000_301),
            Err(SignatureError::OutsideTolerance)
        );
    }

    proptest::proptest! {
        /// Over the whole `i64` range of signed timestamps and clocks: a
        /// correctly signed event is accepted exactly when the two are at
        /// most 300 s apart, and nothing panics.
        #[test]
        fn the_tolerance_holds_over_every_timestamp(
            timestamp in proptest::num::i64::ANY,
            now in proptest::prop_oneof![proptest::num::i64::ANY, Just(0_i64), Just(i64::MAX), Just(i64::MIN)],
            near in proptest::prop_oneof![Just(None), (-400_i64..=400).prop_map(Some)],
        ) {
            let body = br#"{"id":"evt_1"}"#;
            let now = near.map_or(now, |offset| timestamp.saturating_add(offset));
            let header = format!("t={timestamp},v1={}", sign(SECRET, timestamp, body));
            let within = i128::from(now).abs_diff(i128::from(timestamp)) <= 300;
            let verified = verify(SECRET, Some(&header), body, now);
            proptest::prop_assert_eq!(verified.is_ok(), within, "{:?}", verified);
        }

        #[test]
        fn any_header_is_refused_or_accepted_without_panicking(header in ".{0,200}", now in proptest::num::i64::ANY) {
            let _ = verify(SECRET, Some(&header), b"{}", now);
        }
    }
}
