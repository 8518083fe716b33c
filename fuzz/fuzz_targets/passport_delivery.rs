//! Any bytes as the body of `POST /v1/passport/events`: the parser never
//! panics, and every entry it accepts obeys PASSPORT.md's limits and reads
//! back the same from the text the log keeps.

#![no_main]

use coliseum_domain::money::MAX_AMOUNT_MINOR;
use coliseum_domain::passport::{ValidationContext, parse_delivery, validate_raw_envelope};
use coliseum_domain::text::has_forbidden_chars;
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fuzz_target!(|body: &[u8]| {
    let context = ValidationContext::at(datetime!(2026-11-20 18:00:00 UTC));
    let Ok(delivery) = parse_delivery(body, &context) else {
        return;
    };
    for entry in delivery.entries.into_iter().flatten() {
        if let Some(money) = entry.money {
            assert!(money.amount_minor.unsigned_abs() <= MAX_AMOUNT_MINOR.unsigned_abs());
        }
        for text in [&entry.user_id, &entry.artist_id, &entry.live_event_id, &entry.track_id]
            .into_iter()
            .flatten()
        {
            assert!(!has_forbidden_chars(text), "{text:?}");
        }
        let again = validate_raw_envelope(&entry.envelope, "", &context);
        assert_eq!(
            again.ok().as_ref(),
            Some(&entry),
            "the kept text reads back as the same entry"
        );
    }
});
