//! Any `Stripe-Signature` header, body and clock: the check never panics,
//! and it accepts only a timestamp within 300 s of the clock, however far
//! out either is.

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
        // Some `t=` within the window signed it: the check never accepts a
        // header whose timestamps are all out of it.
        let in_window = header
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter_map(|part| part.trim().strip_prefix("t="))
            .filter_map(|t| t.parse::<i64>().ok())
            .any(|t| i128::from(event.now).abs_diff(i128::from(t)) <= 300);
        assert!(in_window, "accepted {header:?} at {}", event.now);
    }
});
