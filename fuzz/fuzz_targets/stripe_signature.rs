//! Any `Stripe-Signature` header, body and clock: the check never panics,
//! accepts only the genuine signature of the timestamp and body, and only a
//! timestamp within 300 s of the clock, however far out either is.

#![no_main]

use arbitrary::Arbitrary;
use coliseum_signatures::stripe::{sign, verify};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_test_secret";

#[derive(Debug, Arbitrary)]
struct Event<'a> {
    header: Option<&'a str>,
    /// Sign the body correctly with this timestamp instead of using `header`.
    signed_at: Option<i64>,
    now: i64,
    body: &'a [u8],
}

fuzz_target!(|event: Event<'_>| {
    let header = match event.signed_at {
        Some(at) => Some(format!("t={at},v1={}", sign(SECRET, at, event.body))),
        None => event.header.map(str::to_owned),
    };
    let verified = verify(SECRET, header.as_deref(), event.body, event.now);
    if let Some(at) = event.signed_at {
        let apart = i128::from(event.now).abs_diff(i128::from(at));
        assert_eq!(
            verified.is_ok(),
            apart <= 300,
            "a correct signature at {at}, clock {}",
            event.now
        );
    }
    if verified.is_ok() {
        // The timestamp is the header's last `t=` (as Stripe's libraries
        // read it); it is within the window, and a `v1` is the genuine
        // signature of it and the body.
        let header = header.as_deref().unwrap_or_default();
        let parts: Vec<(&str, &str)> = header
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .collect();
        let t = parts
            .iter()
            .rev()
            .find(|(name, _)| *name == "t")
            .and_then(|(_, value)| value.parse::<i64>().ok())
            .expect("an accepted header has a timestamp");
        assert!(
            i128::from(event.now).abs_diff(i128::from(t)) <= 300,
            "accepted t={t} at {}",
            event.now
        );
        let genuine = sign(SECRET, t, event.body);
        assert!(
            parts.iter().any(|(name, value)| *name == "v1" && *value == genuine),
            "accepted {header:?}"
        );
    }
});
