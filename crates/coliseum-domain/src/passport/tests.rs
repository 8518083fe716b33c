//! Validation cases for envelopes and deliveries, and the property that no
//! input makes the parser panic.

use proptest::prelude::*;
use serde_json::{Value, json};
use time::macros::datetime;

use super::*;

fn context() -> ValidationContext {
    ValidationContext::at(datetime!(2026-11-20 18:00:00 UTC))
}

fn play() -> Value {
    json!({
        "event_id": "e-1",
        "schema_version": 1,
        "type": "audio.play",
        "timestamp": "2026-11-20T17:04:05.123456789+01:00",
        "user_id": "fan_1",
        "artist_id": "art_1",
        "metadata": {"city": " Lagos ", "genre": "AFROBEATS", "country": "ng", "extra": {"kept": true}},
        "engagement": {"duration_ms": 183000, "completion": 0.92}
    })
}

fn with(mut envelope: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let target = if parent.is_empty() {
        &mut envelope
    } else {
        envelope.pointer_mut(parent).expect("parent exists")
    };
    target
        .as_object_mut()
        .expect("parent is an object")
        .insert(key.to_owned(), value);
    envelope
}

fn without(mut envelope: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    let target = if parent.is_empty() {
        &mut envelope
    } else {
        envelope.pointer_mut(parent).expect("parent exists")
    };
    target.as_object_mut().expect("parent is an object").remove(key);
    envelope
}

fn errors_of(envelope: &Value) -> Vec<(String, String)> {
    match validate_envelope(envelope, "/events/3", &context()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(|e| (e.pointer, e.detail)).collect(),
    }
}

#[test]
fn a_valid_play_is_normalized() {
    let entry = validate_envelope(&play(), "", &context()).expect("valid");
    assert_eq!(entry.timestamp, datetime!(2026-11-20 16:04:05.123456 UTC));
    assert_eq!(
        entry.city.as_ref().map(|c| (c.key.as_str(), c.display.as_str())),
        Some(("lagos", "Lagos"))
    );
    assert_eq!(entry.genre.as_ref().map(|g| g.key.as_str()), Some("afrobeats"));
    assert_eq!(entry.country.as_deref(), Some("NG"));
    assert_eq!(entry.tier(), Some(Tier::LIGHT));
    assert!(entry.is_full_play());
    let kept: Value = serde_json::from_str(&entry.envelope).expect("json");
    assert_eq!(kept, play(), "the log keeps the envelope as given");
}

#[test]
fn a_short_play_is_a_preview() {
    let entry =
        validate_envelope(&with(play(), "/engagement/duration_ms", json!(29_999)), "", &context()).expect("valid");
    assert_eq!(entry.tier(), Some(Tier::PASSIVE));
    assert!(!entry.is_full_play());
}

#[test]
fn unknown_well_formed_types_are_kept_as_unrecognized() {
    let entry = validate_envelope(&with(play(), "/type", json!("hologram.beamed")), "", &context()).expect("valid");
    assert_eq!(entry.kind, EntryKind::Unrecognized);
    assert_eq!(entry.tier(), None);
}

#[test]
fn field_errors_point_into_the_batch() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (without(play(), "/event_id"), "/events/3/event_id", "is required"),
        (
            with(play(), "/event_id", json!("has space")),
            "/events/3/event_id",
            "must be 1 to 128",
        ),
        (
            with(play(), "/event_id", json!("x".repeat(129))),
            "/events/3/event_id",
            "must be 1 to 128",
        ),
        (
            with(play(), "/event_id", json!(7)),
            "/events/3/event_id",
            "must be a string",
        ),
        (
            with(play(), "/schema_version", json!(2)),
            "/events/3/schema_version",
            "supported versions: 1",
        ),
        (
            with(play(), "/schema_version", json!("1")),
            "/events/3/schema_version",
            "must be an integer",
        ),
        (
            without(play(), "/schema_version"),
            "/events/3/schema_version",
            "is required",
        ),
        (
            with(play(), "/type", json!("Audio.Play")),
            "/events/3/type",
            "family.action",
        ),
        (with(play(), "/type", json!("audio")), "/events/3/type", "family.action"),
        (
            with(play(), "/timestamp", json!("2026-11-20 18:00:00")),
            "/events/3/timestamp",
            "RFC 3339",
        ),
        (
            with(play(), "/timestamp", json!("2026-11-20T18:05:01Z")),
            "/events/3/timestamp",
            "more than 5 minutes in the future",
        ),
        (
            with(play(), "/timestamp", json!("2024-11-20T17:59:59Z")),
            "/events/3/timestamp",
            "24-month",
        ),
        (with(play(), "/user_id", json!("")), "/events/3/user_id", "1 to 128"),
        (
            with(play(), "/artist_id", json!(42)),
            "/events/3/artist_id",
            "string or null",
        ),
        (
            without(play(), "/artist_id"),
            "/events/3/artist_id",
            "is required for audio.play",
        ),
        (
            without(play(), "/engagement"),
            "/events/3/engagement/duration_ms",
            "is required for audio.play",
        ),
        (
            with(play(), "/engagement/duration_ms", json!(-1)),
            "/events/3/engagement/duration_ms",
            "at least 0",
        ),
        (
            with(play(), "/engagement/completion", json!(1.5)),
            "/events/3/engagement/completion",
            "0.0 to 1.0",
        ),
        (
            with(play(), "/metadata", json!([])),
            "/events/3/metadata",
            "must be an object",
        ),
        (
            with(play(), "/metadata/big", json!("x".repeat(8200))),
            "/events/3/metadata",
            "8 KiB",
        ),
        (
            with(play(), "/metadata/city", json!("  ")),
            "/events/3/metadata/city",
            "blank",
        ),
        (
            with(play(), "/metadata/country", json!("NGA")),
            "/events/3/metadata/country",
            "alpha-2",
        ),
        (
            with(play(), "/metadata/currency", json!("usd")),
            "/events/3/metadata/currency",
            "ISO 4217",
        ),
    ];
    for (envelope, pointer, detail) in cases {
        let errors = errors_of(&envelope);
        assert!(
            errors.iter().any(|(p, d)| p == pointer && d.contains(detail)),
            "expected {pointer}: {detail}, got {errors:?}"
        );
    }
}

#[test]
fn the_boundaries_of_the_time_window_are_inclusive() {
    assert!(errors_of(&with(play(), "/timestamp", json!("2026-11-20T18:05:00Z"))).is_empty());
    assert!(errors_of(&with(play(), "/timestamp", json!("2024-11-20T18:00:00Z"))).is_empty());
    let leap = ValidationContext::at(datetime!(2028-02-29 12:00:00 UTC));
    assert_eq!(leap.oldest_accepted(), datetime!(2026-02-28 12:00:00 UTC));
}

#[test]
fn each_type_requires_its_own_fields() {
    let base = json!({"event_id": "e", "schema_version": 1, "timestamp": "2026-11-20T17:00:00Z"});
    let required = |type_name: &str| -> Vec<String> {
        let errors = errors_of(&with(base.clone(), "/type", json!(type_name)));
        errors
            .into_iter()
            .filter(|(_, d)| d.starts_with("is required for"))
            .map(|(p, _)| p)
            .collect()
    };
    assert_eq!(
        required("treasury.tip"),
        [
            "/events/3/artist_id",
            "/events/3/user_id",
            "/events/3/metadata/amount_minor",
            "/events/3/metadata/currency"
        ]
    );
    assert_eq!(
        required("event.attended"),
        [
            "/events/3/artist_id",
            "/events/3/user_id",
            "/events/3/metadata/live_event_id"
        ]
    );
    assert_eq!(required("badge.earned"), ["/events/3/user_id"]);
    assert_eq!(
        required("artist.headlined"),
        ["/events/3/artist_id", "/events/3/metadata/live_event_id"]
    );
    assert!(
        required("hologram.beamed").is_empty(),
        "unknown types only need the envelope"
    );
    for spec in &KNOWN_TYPES {
        assert!(!required(spec.name).is_empty(), "{} requires something", spec.name);
    }
}

#[test]
fn payment_rules() {
    let spent = json!({
        "event_id": "p", "schema_version": 1, "type": "treasury.money_spent", "timestamp": "2026-11-20T17:00:00Z",
        "user_id": "u", "artist_id": "a", "metadata": {"amount_minor": 1000, "currency": "EUR", "kind": "ticket"}
    });
    let entry = validate_envelope(&spent, "", &context()).expect("valid");
    assert_eq!(
        entry.money.map(|m| (m.amount_minor, m.currency.as_str().to_owned())),
        Some((1000, "EUR".to_owned()))
    );
    let bad_kind = errors_of(&with(spent.clone(), "/metadata/kind", json!("bribe")));
    assert!(bad_kind.iter().any(|(p, _)| p == "/events/3/metadata/kind"));
    let negative = errors_of(&with(spent.clone(), "/metadata/amount_minor", json!(-5)));
    assert_eq!(negative.len(), 1, "{negative:?}");
    let fractional = errors_of(&with(spent.clone(), "/metadata/amount_minor", json!(10.5)));
    assert!(fractional.iter().any(|(p, _)| p == "/events/3/metadata/amount_minor"));
    let largest = with(spent.clone(), "/metadata/amount_minor", json!(1_000_000_000_000_i64));
    assert!(validate_envelope(&largest, "", &context()).is_ok());
    for beyond in [
        json!(1_000_000_000_001_i64),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e300),
    ] {
        let errors = errors_of(&with(spent.clone(), "/metadata/amount_minor", beyond.clone()));
        assert_eq!(
            errors.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["/events/3/metadata/amount_minor"],
            "{beyond}"
        );
    }
}

#[test]
fn consent_purposes_are_booleans() {
    let consent = json!({
        "event_id": "c", "schema_version": 1, "type": "account.consent_updated", "timestamp": "2026-11-20T17:00:00Z",
        "user_id": "u", "metadata": {"purposes": {"analytics": true, "marketing": false}}
    });
    assert!(errors_of(&consent).is_empty());
    assert!(!errors_of(&with(consent, "/metadata/purposes/analytics", json!("yes"))).is_empty());
}

#[test]
fn deliveries_single_and_batch() {
    let single = serde_json::to_vec(&play()).expect("json");
    let delivery = parse_delivery(&single, &context()).expect("delivery");
    assert_eq!(delivery.entries.len(), 1);

    let batch = json!({"events": [play(), without(play(), "/timestamp")]});
    let delivery = parse_delivery(batch.to_string().as_bytes(), &context()).expect("delivery");
    assert!(delivery.entries[0].is_ok());
    let rejected = delivery.entries[1].as_ref().expect_err("rejected");
    assert_eq!(rejected.event_id.as_deref(), Some("e-1"));
    assert_eq!(rejected.errors[0].pointer, "/events/1/timestamp");

    assert!(matches!(
        parse_delivery(b"{", &context()),
        Err(DeliveryError::NotJson(_))
    ));
    assert_eq!(parse_delivery(b"[]", &context()).err(), Some(DeliveryError::WrongShape));
    assert_eq!(
        parse_delivery(br#"{"events": []}"#, &context()).err(),
        Some(DeliveryError::BadBatch)
    );
    assert_eq!(
        parse_delivery(br#"{"events": {}}"#, &context()).err(),
        Some(DeliveryError::BadBatch)
    );
    let twice = format!(r#"{{"events": [{}], "events": [{}]}}"#, play(), play());
    assert_eq!(
        parse_delivery(twice.as_bytes(), &context()).err(),
        Some(DeliveryError::RepeatedEvents),
        "a batch that repeats `events` is ambiguous, not last-wins"
    );
    let escaped = format!(r#"{{"events": [{}], "\u0065vents": []}}"#, play());
    assert_eq!(
        parse_delivery(escaped.as_bytes(), &context()).err(),
        Some(DeliveryError::RepeatedEvents),
        "the same key spelled with an escape"
    );
    let too_many = json!({"events": vec![play(); MAX_BATCH_ENTRIES + 1]});
    assert_eq!(
        parse_delivery(too_many.to_string().as_bytes(), &context()).err(),
        Some(DeliveryError::BadBatch)
    );
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("audio.play"),
            Just("2026-11-20T17:00:00Z"),
            Just("e-1"),
            Just("USD")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("event_id".to_owned()),
            Just("schema_version".to_owned()),
            Just("type".to_owned()),
            Just("timestamp".to_owned()),
            Just("user_id".to_owned()),
            Just("artist_id".to_owned()),
            Just("metadata".to_owned()),
            Just("engagement".to_owned()),
            Just("events".to_owned()),
            Just("amount_minor".to_owned()),
            Just("currency".to_owned()),
            Just("duration_ms".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_delivery(&body, &context());
    }

    #[test]
    fn arbitrary_json_never_panics(document in arbitrary_json()) {
        let _ = parse_delivery(document.to_string().as_bytes(), &context());
    }

    #[test]
    fn mutated_valid_envelopes_never_panic(key in "[a-z_]{1,12}", value in arbitrary_json()) {
        let _ = validate_envelope(&with(play(), &format!("/{key}"), value.clone()), "", &context());
        let _ = validate_envelope(&with(play(), &format!("/metadata/{key}"), value), "", &context());
    }
}

#[test]
fn deliveries_keep_each_envelope_exactly_as_signed() {
    let first = r#"{ "event_id":"raw-1", "schema_version":1, "type":"badge.earned",
        "timestamp":"2026-11-20T17:00:00Z", "user_id":"u", "metadata":{"note":"caf\u00e9"} }"#;
    let body = format!(r#"{{"events": [{first}, {{"event_id": "raw-2"}}]}}"#);
    let delivery = parse_delivery(body.as_bytes(), &context()).expect("delivery");
    let entry = delivery.entries[0].as_ref().expect("valid");
    assert_eq!(entry.envelope, first, "whitespace and escapes as the sender wrote them");
    let rejected = delivery.entries[1].as_ref().expect_err("rejected");
    assert_eq!(rejected.event_id.as_deref(), Some("raw-2"));
    let single = parse_delivery(format!("  {first}\n").as_bytes(), &context()).expect("delivery");
    assert_eq!(single.entries[0].as_ref().map(|e| e.envelope.as_str()), Ok(first));
    assert!(matches!(
        parse_delivery(&[0xff, 0xfe], &context()),
        Err(DeliveryError::NotJson(_))
    ));
}

#[test]
fn a_stored_entry_reads_back_the_same_however_late_it_is_processed() {
    let received = validate_envelope(&play(), "", &context()).expect("valid on arrival");
    let read_back = ValidationContext::stored(datetime!(2026-11-20 18:00:00 UTC));
    let mut text = received.envelope.clone();
    assert_eq!(
        validate_raw_envelope(&text, "", &read_back).ok(),
        Some(received.clone())
    );
    // A window check would now refuse it; reading back must not.
    text = text.replace("2026-11-20T17:04:05", "2020-01-01T00:00:00");
    assert!(validate_raw_envelope(&text, "", &context()).is_err());
    assert!(validate_raw_envelope(&text, "", &read_back).is_ok());
}

#[test]
fn ids_and_dimensions_with_control_characters_or_bidi_overrides_are_field_errors() {
    for (pointer, bad) in [
        ("/user_id", "fan\u{0}1"),
        ("/artist_id", "art\u{202E}1"),
        ("/metadata/city", "La\ngos"),
        ("/metadata/genre", "\u{2066}pop"),
        ("/metadata/live_event_id", "live\u{7f}"),
        ("/metadata/artist_name", "Burna\u{202E}Boy"),
    ] {
        let errors = errors_of(&with(play(), pointer, json!(bad)));
        assert_eq!(
            errors.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            [format!("/events/3{pointer}")],
            "{bad:?}"
        );
    }
    let accented = with(play(), "/metadata/city", json!("São Paulo"));
    assert!(validate_envelope(&accented, "", &context()).is_ok());
}

#[test]
fn display_names_are_optional_trimmed_and_bounded() {
    let named = with(
        with(play(), "/metadata/artist_name", json!("  Tems ")),
        "/metadata/live_event_name",
        json!("Afro Nation Lagos"),
    );
    let entry = validate_envelope(&named, "", &context()).expect("valid");
    assert_eq!(entry.artist_name.as_deref(), Some("Tems"));
    assert_eq!(entry.live_event_name.as_deref(), Some("Afro Nation Lagos"));
    let plain = validate_envelope(&play(), "", &context()).expect("valid");
    assert_eq!((plain.artist_name, plain.live_event_name), (None, None));
    for bad in [
        json!("   "),
        json!("\u{200B}\u{2060}"),
        json!("x".repeat(201)),
        json!(7),
    ] {
        let errors = errors_of(&with(play(), "/metadata/artist_name", bad.clone()));
        assert_eq!(
            errors.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["/events/3/metadata/artist_name"],
            "{bad}"
        );
    }
    let longest = with(play(), "/metadata/live_event_name", json!("é".repeat(200)));
    assert!(validate_envelope(&longest, "", &context()).is_ok());

    // Stored before names were read, a bad one was an unknown key: read
    // back, the entry still counts, without a name.
    let stored_long_ago = with(play(), "/metadata/artist_name", json!(7)).to_string();
    let read_back = ValidationContext::stored(context().now);
    let entry = validate_raw_envelope(&stored_long_ago, "", &read_back).expect("still valid");
    assert_eq!(entry.artist_name, None);
}

#[test]
fn an_envelope_that_repeats_a_key_is_rejected_as_ambiguous() {
    let text = play().to_string();
    let repeated = text.replacen(
        "\"type\":\"audio.play\"",
        "\"type\":\"audio.play\",\"type\":\"treasury.tip\"",
        1,
    );
    assert_ne!(repeated, text, "the envelope has a type to repeat");
    let (_, errors) = validate_raw_envelope(&repeated, "/events/0", &context()).expect_err("ambiguous");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].pointer, "/events/0");
    assert!(
        errors[0].detail.contains("repeats the key `type`"),
        "{}",
        errors[0].detail
    );
    assert!(errors[0].detail.contains("ambiguous"), "{}", errors[0].detail);
    let body = format!("{{\"events\": [{repeated}]}}");
    let delivery = parse_delivery(body.as_bytes(), &context()).expect("a delivery");
    assert!(delivery.entries[0].is_err(), "rejected in a delivery too");
}
