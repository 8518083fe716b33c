//! Any `webhook-*` headers, body and clock: the Standard Webhooks check
//! never panics, and it accepts only a timestamp within 5 minutes of the
//! clock, however far out either is.

#![no_main]

use arbitrary::Arbitrary;
use coliseum_signatures::passport::WebhookKey;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

#[derive(Debug, Arbitrary)]
struct Delivery<'a> {
    id: Option<&'a str>,
    timestamp: Option<&'a str>,
    signatures: Option<&'a str>,
    /// Sign the body correctly with this timestamp instead of using `signatures`.
    signed_at: Option<i64>,
    now: i64,
    body: &'a [u8],
}

fuzz_target!(|delivery: Delivery<'_>| {
    let key = WebhookKey::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("a valid secret");
    let Ok(now) = OffsetDateTime::from_unix_timestamp(delivery.now) else {
        return;
    };
    let id = delivery.id.unwrap_or("msg_1");
    let (timestamp, signature) = match delivery.signed_at {
        Some(at) => (Some(at.to_string()), Some(key.sign(id, at, delivery.body))),
        None => (
            delivery.timestamp.map(str::to_owned),
            delivery.signatures.map(str::to_owned),
        ),
    };
    let verified = key.verify(
        delivery.id,
        timestamp.as_deref(),
        signature.as_deref(),
        delivery.body,
        now,
    );
    if verified.is_ok() {
        let seconds: i64 = timestamp
            .as_deref()
            .unwrap_or_default()
            .trim()
            .parse()
            .expect("an accepted timestamp parses");
        let apart = i128::from(delivery.now).abs_diff(i128::from(seconds));
        assert!(apart <= 300, "accepted a timestamp {apart} s from the clock");
        // No forgery: the header lists the one signature of exactly these
        // id, timestamp and body.
        let genuine = key.sign(id, seconds, delivery.body);
        let listed = signature.as_deref().unwrap_or_default();
        assert!(
            listed.split(' ').any(|candidate| candidate == genuine),
            "accepted {listed:?} for {id:?} at {seconds}"
        );
    }
    if let (Some(at), Some(_)) = (delivery.signed_at, delivery.id) {
        let apart = i128::from(delivery.now).abs_diff(i128::from(at));
        assert_eq!(
            verified.is_ok(),
            apart <= 300,
            "a correct signature at {at}, clock {}",
            delivery.now
        );
    }
});
