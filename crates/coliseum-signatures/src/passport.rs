//! Standard Webhooks signatures (PASSPORT.md, "Delivery"): HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}` with the key after `whsec_`,
//! any of several `v1,<base64>` signatures may match (so secrets can rotate),
//! timestamps at most 5 minutes off, compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

const TOLERANCE_SECONDS: i64 = 5 * 60;
/// Signatures one header may list: a sender rotating its secret sends two.
const MAX_SIGNATURES: usize = 8;

/// Why a delivery's signature was refused. Every case is a `401`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the webhook-id, webhook-timestamp and webhook-signature headers are required")]
    MissingHeaders,
    #[error("webhook-timestamp must be whole seconds since the Unix epoch")]
    MalformedTimestamp,
    #[error("webhook-timestamp is more than 5 minutes away from the receiver's clock")]
    StaleTimestamp,
    #[error("webhook-signature must be a space-separated list of at most 8 `v1,<base64>`")]
    MalformedSignature,
    #[error("no signature matches the body with the configured secret")]
    Mismatch,
    #[error("this server has no Passport webhook secret configured")]
    NotConfigured,
}

/// The shared secret of a webhook sender.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookKey(Vec<u8>);

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey([redacted])")
    }
}

/// A secret that is not `whsec_` followed by base64.
#[derive(Debug, thiserror::Error)]
#[error("a webhook secret is `whsec_` followed by base64 (at least 16 bytes)")]
pub struct BadSecret;

impl WebhookKey {
    pub fn parse(secret: &str) -> Result<Self, BadSecret> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD.decode(encoded).map_err(|_| BadSecret)?;
        if key.len() < 16 {
            return Err(BadSecret);
        }
        Ok(Self(key))
    }

    /// A fresh random secret, as `whsec_…`.
    pub fn generate() -> (Self, String) {
        let key: [u8; 32] = rand::random();
        (Self(key.to_vec()), format!("whsec_{}", STANDARD.encode(key)))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self.mac(id, &timestamp.to_string(), body).finalize().into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// Checks a delivery's headers against its raw body at `now`.
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), SignatureError> {
        self.verify_body(&SignedHeaders::check(id, timestamp, signatures, now)?, body)
    }

    /// Checks headers already found present and fresh against the body.
    /// The MAC is computed once, whatever the header lists: a header of
    /// thousands of candidates must not cost thousands of passes over a
    /// megabyte body.
    pub fn verify_body(&self, headers: &SignedHeaders<'_>, body: &[u8]) -> Result<(), SignatureError> {
        let candidates: Vec<&str> = headers.signatures.split(' ').filter(|s| !s.is_empty()).collect();
        if candidates.len() > MAX_SIGNATURES {
            return Err(SignatureError::MalformedSignature);
        }
        let expected = self.mac(headers.id, headers.timestamp, body).finalize().into_bytes();
        let mut any_well_formed = false;
        for candidate in candidates {
            let Some(("v1", encoded)) = candidate.split_once(',') else {
                continue;
            };
            let Ok(tag) = STANDARD.decode(encoded) else { continue };
            any_well_formed = true;
            // Compared in constant time; a tag of another length never matches.
            if bool::from(tag.as_slice().ct_eq(expected.as_slice())) {
                return Ok(());
            }
        }
        Err(if any_well_formed {
            SignatureError::Mismatch
        } else {
            SignatureError::MalformedSignature
        })
    }
}

/// A delivery's signature headers, present and with a fresh timestamp:
/// what can be checked before a byte of the body is read.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    id: &'a str,
    timestamp: &'a str,
    signatures: &'a str,
}

impl<'a> SignedHeaders<'a> {
    pub fn check(
        id: Option<&'a str>,
        timestamp: Option<&'a str>,
        signatures: Option<&'a str>,
        now: OffsetDateTime,
    ) -> Result<Self, SignatureError> {
        let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
            return Err(SignatureError::MissingHeaders);
        };
        let timestamp = timestamp.trim();
        let seconds: i64 = timestamp.parse().map_err(|_| SignatureError::MalformedTimestamp)?;
        if !within_tolerance(now, seconds) {
            return Err(SignatureError::StaleTimestamp);
        }
        Ok(Self {
            id,
            timestamp,
            signatures,
        })
    }
}

/// Whether `seconds` since the epoch is at most [`TOLERANCE_SECONDS`] from
/// `now`, however far out it is: the difference is taken without overflow.
pub fn within_tolerance(now: OffsetDateTime, seconds: i64) -> bool {
    now.unix_timestamp().abs_diff(seconds) <= TOLERANCE_SECONDS.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Just;
    use proptest::strategy::Strategy;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const AT: i64 = 1_649_367_553;

    fn key() -> WebhookKey {
        WebhookKey::parse(SECRET).expect("valid secret")
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(AT).expect("valid")
    }

    /// The published Standard Webhooks test vector.
    #[test]
    fn signs_the_published_test_vector() {
        assert_eq!(
            key().sign(ID, AT, BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn verifies_what_the_official_library_signs() {
        let official = standardwebhooks::Webhook::new(SECRET).expect("secret");
        let signature = official.sign(ID, AT, BODY).expect("sign");
        assert_eq!(
            key().verify(Some(ID), Some(&AT.to_string()), Some(&signature), BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let good = key().sign(ID, AT, BODY);
        let list = format!("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU= v2,abc {good}");
        assert_eq!(
            key().verify(Some(ID), Some(&AT.to_string()), Some(&list), BODY, now()),
            Ok(())
        );
    }

    #[test]
    fn refusals_say_why() {
        let good = key().sign(ID, AT, BODY);
        let ts = AT.to_string();
        let many = format!("{} {good}", "v1, ".repeat(8));
        let truncated = &good[..good.len() - 4];
        let seconds = time::Duration::seconds;
        // id, timestamp, signatures, body, clock, outcome.
        type Outcome = Result<(), SignatureError>;
        type Case<'a> = (Option<&'a str>, &'a str, &'a str, &'a [u8], OffsetDateTime, Outcome);
        let cases: [Case<'_>; 11] = [
            (None, &ts, &good, BODY, now(), Err(SignatureError::MissingHeaders)),
            (
                Some(ID),
                "soon",
                &good,
                BODY,
                now(),
                Err(SignatureError::MalformedTimestamp),
            ),
            (
                Some(ID),
                &ts,
                &good,
                BODY,
                now() + seconds(301),
                Err(SignatureError::StaleTimestamp),
            ),
            (
                Some(ID),
                &ts,
                &good,
                BODY,
                now() - seconds(301),
                Err(SignatureError::StaleTimestamp),
            ),
            (Some(ID), &ts, &good, BODY, now() + seconds(300), Ok(())),
            (Some(ID), &ts, "v1,", BODY, now(), Err(SignatureError::Mismatch)),
            (
                Some(ID),
                &ts,
                "nonsense",
                BODY,
                now(),
                Err(SignatureError::MalformedSignature),
            ),
            (Some(ID), &ts, &good, b"{}", now(), Err(SignatureError::Mismatch)),
            (Some("other"), &ts, &good, BODY, now(), Err(SignatureError::Mismatch)),
            // More candidates than any sender needs.
            (
                Some(ID),
                &ts,
                &many,
                BODY,
                now(),
                Err(SignatureError::MalformedSignature),
            ),
            (Some(ID), &ts, truncated, BODY, now(), Err(SignatureError::Mismatch)),
        ];
        for (id, timestamp, signatures, body, now, expected) in cases {
            assert_eq!(
                key().verify(id, Some(timestamp), Some(signatures), body, now),
                expected,
                "{id:?} {timestamp} {signatures} at {now}"
            );
        }
    }

    #[test]
    fn secrets_must_be_base64_of_at_least_16_bytes() {
        assert!(WebhookKey::parse("whsec_***").is_err());
        assert!(WebhookKey::parse("whsec_c2hvcnQ=").is_err());
        let (generated, text) = WebhookKey::generate();
        assert_eq!(WebhookKey::parse(&text).expect("round trip"), generated);
        assert!(!format!("{generated:?}").contains(&text[6..]));
    }

    proptest::proptest! {
        /// Over the whole `i64` range of timestamps and clocks: a correctly
        /// signed delivery is accepted exactly when the two are at most
        /// 5 minutes apart, and nothing panics.
        #[test]
        fn the_tolerance_holds_over_every_timestamp(
            timestamp in proptest::num::i64::ANY,
            now in proptest::prop_oneof![
                proptest::num::i64::ANY,
                Just(OffsetDateTime::UNIX_EPOCH.unix_timestamp()),
            ],
            near in proptest::prop_oneof![Just(None), (-400_i64..=400).prop_map(Some)],
        ) {
            // The clocks a server can have: what `OffsetDateTime` represents.
            let now = near.map_or(now, |offset| timestamp.saturating_add(offset));
            let Ok(now) = OffsetDateTime::from_unix_timestamp(now) else { return Ok(()) };
            let signature = key().sign(ID, timestamp, BODY);
            let within = i128::from(now.unix_timestamp()).abs_diff(i128::from(timestamp)) <= 300;
            let verified = key().verify(Some(ID), Some(&timestamp.to_string()), Some(&signature), BODY, now);
            proptest::prop_assert_eq!(verified.is_ok(), within, "{:?}", verified);
        }

        #[test]
        fn any_headers_are_refused_or_accepted_without_panicking(
            id in ".{0,40}",
            timestamp in ".{0,30}",
            signatures in ".{0,200}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let _ = key().verify(Some(&id), Some(&timestamp), Some(&signatures), &body, now());
        }
    }
}
