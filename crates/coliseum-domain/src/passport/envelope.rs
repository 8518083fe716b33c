//! One envelope: from untrusted JSON to a validated [`Entry`], with every
//! problem reported as a field error that points into the request body.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::catalogue::{PLAY_THRESHOLD_MS, Requirement, Tier, TypeSpec};
use crate::dimension::Dimension;
use crate::money::{Currency, MAX_AMOUNT_MINOR};
use crate::text::{FORBIDDEN_CHARS, has_forbidden_chars, is_invisible};

/// The envelope versions this receiver understands.
pub const SUPPORTED_SCHEMA_VERSIONS: &[u64] = &[1];
const MAX_ID_CHARS: usize = 128;
/// The longest display name (`metadata.artist_name`, `live_event_name`).
const MAX_NAME_CHARS: usize = 200;
const MAX_METADATA_BYTES: usize = 8 * 1024;
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
const HOT_RETENTION_MONTHS: i32 = 24;
const PAYMENT_KINDS: &[&str] = &["ticket", "merch", "tip", "subscription", "release", "other"];

/// A problem with one field, located by a JSON Pointer into the request body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

/// What validation compares timestamps against.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext {
    /// The receiver's clock when the delivery arrived.
    pub now: OffsetDateTime,
    /// Whether timestamps must fall inside the window around `now`.
    window: bool,
}

impl ValidationContext {
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            now: now.to_offset(UtcOffset::UTC),
            window: true,
        }
    }

    /// For reading back an entry the log already holds: it passed the
    /// timestamp window when it arrived, and must read the same way however
    /// long afterwards it is processed or rebuilt.
    pub fn stored(received_at: OffsetDateTime) -> Self {
        Self {
            window: false,
            ..Self::at(received_at)
        }
    }

    /// The latest timestamp accepted: five minutes ahead of the receiver.
    pub fn latest_accepted(&self) -> OffsetDateTime {
        self.now + MAX_CLOCK_SKEW
    }

    /// The oldest timestamp accepted: the start of the hot retention window.
    pub fn oldest_accepted(&self) -> OffsetDateTime {
        let date = self.now.date();
        let year = date.year() - HOT_RETENTION_MONTHS / 12;
        // 29 February has no twin two years on; the day before is the nearest.
        let shifted = date
            .replace_year(year)
            .or_else(|_| date.replace_day(28).and_then(|d| d.replace_year(year)))
            .unwrap_or(date);
        self.now.replace_date(shifted)
    }
}

/// Whether the engine knows an entry's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Known(&'static TypeSpec),
    /// Well-formed but unknown to this version: stored, not counted.
    Unrecognized,
}

/// Money carried by an entry, in minor units of its own currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

/// The optional measures of an interaction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Engagement {
    pub duration_ms: Option<u64>,
    pub completion: Option<f64>,
    pub position_ms: Option<u64>,
}

/// A validated Passport entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub event_id: String,
    pub type_name: String,
    pub kind: EntryKind,
    /// UTC, truncated to whole microseconds (what both stores keep).
    pub timestamp: OffsetDateTime,
    pub user_id: Option<String>,
    pub artist_id: Option<String>,
    pub city: Option<Dimension>,
    pub genre: Option<Dimension>,
    pub country: Option<String>,
    pub live_event_id: Option<String>,
    pub track_id: Option<String>,
    /// The artist's display name as the platform shows it, trimmed.
    pub artist_name: Option<String>,
    /// The live event's display name, trimmed.
    pub live_event_name: Option<String>,
    pub money: Option<Money>,
    pub engagement: Engagement,
    /// The envelope as received, as compact JSON: what the log keeps.
    pub envelope: String,
}

impl Entry {
    pub fn is_recognized(&self) -> bool {
        matches!(self.kind, EntryKind::Known(_))
    }

    /// The entry's weight tier; `None` for an unrecognized type. A play
    /// shorter than 30 s is a preview, tier 0.1.
    pub fn tier(&self) -> Option<Tier> {
        let EntryKind::Known(spec) = self.kind else { return None };
        Some(if spec.name == "audio.play" && !self.is_full_play() {
            Tier::PASSIVE
        } else {
            spec.tier
        })
    }

    /// An `audio.play` that lasted long enough to count as a play.
    pub fn is_full_play(&self) -> bool {
        self.type_name == "audio.play" && self.engagement.duration_ms.is_some_and(|ms| ms >= PLAY_THRESHOLD_MS)
    }
}

/// The `event_id` of a possibly invalid envelope, for reporting its fate.
pub fn event_id_of(envelope: &Value) -> Option<&str> {
    envelope.get("event_id").and_then(Value::as_str)
}

/// Validates one envelope. `at` is the JSON Pointer of the envelope in the
/// request body (`""` for a single envelope, `/events/3` in a batch). The
/// entry keeps the envelope re-serialized; [`validate_raw_envelope`] keeps
/// the text exactly as received.
pub fn validate_envelope(envelope: &Value, at: &str, context: &ValidationContext) -> Result<Entry, Vec<FieldError>> {
    validate(envelope, at, context, || envelope.to_string())
}

/// Validates one envelope given as JSON text, which the entry keeps as is.
/// A rejection carries the envelope's `event_id` when it has one.
pub fn validate_raw_envelope(
    raw: &str,
    at: &str,
    context: &ValidationContext,
) -> Result<Entry, (Option<String>, Vec<FieldError>)> {
    let envelope: Value = super::strict_json::from_str(raw).map_err(|error| {
        let error = error.to_string();
        let detail = if error.starts_with(super::strict_json::REPEATED_KEY) {
            format!("{error}: an envelope that repeats a key is ambiguous")
        } else {
            format!("is not valid JSON: {error}")
        };
        (
            None,
            vec![FieldError {
                pointer: at.to_owned(),
                detail,
            }],
        )
    })?;
    validate(&envelope, at, context, || raw.to_owned())
        .map_err(|errors| (event_id_of(&envelope).map(str::to_owned), errors))
}

fn validate(
    envelope: &Value,
    at: &str,
    context: &ValidationContext,
    kept_text: impl FnOnce() -> String,
) -> Result<Entry, Vec<FieldError>> {
    let mut check = Checker { at, errors: Vec::new() };
    let Some(fields) = envelope.as_object() else {
        check.fail("", "an entry must be a JSON object");
        return Err(check.errors);
    };

    let event_id = check.event_id(fields.get("event_id"));
    check.schema_version(fields.get("schema_version"));
    let type_name = check.type_name(fields.get("type"));
    let timestamp = check.timestamp(fields.get("timestamp"), context);
    let user_id = check.optional_id(fields.get("user_id"), "/user_id");
    let artist_id = check.optional_id(fields.get("artist_id"), "/artist_id");
    let empty = Map::new();
    let metadata = match fields.get("metadata") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(metadata)) => {
            if serde_json::to_string(metadata).map_or(0, |s| s.len()) > MAX_METADATA_BYTES {
                check.fail("/metadata", "must be at most 8 KiB when serialized");
            }
            metadata
        }
        Some(_) => {
            check.fail("/metadata", "must be an object");
            &empty
        }
    };
    let city = check.dimension(metadata.get("city"), "/metadata/city");
    let genre = check.dimension(metadata.get("genre"), "/metadata/genre");
    let country = check.country(metadata.get("country"));
    let live_event_id = check.optional_id(metadata.get("live_event_id"), "/metadata/live_event_id");
    let track_id = check.optional_id(metadata.get("track_id"), "/metadata/track_id");
    let artist_name = check.display_name(metadata.get("artist_name"), "/metadata/artist_name", context);
    let live_event_name = check.display_name(metadata.get("live_event_name"), "/metadata/live_event_name", context);
    let money = check.money(metadata);
    let engagement = check.engagement(fields.get("engagement"));

    let kind = match type_name.as_deref().map(TypeSpec::lookup) {
        Some(Some(spec)) => EntryKind::Known(spec),
        _ => EntryKind::Unrecognized,
    };
    if let EntryKind::Known(spec) = kind {
        check.type_rules(spec, fields, metadata, &engagement);
    }

    match (event_id, type_name, timestamp) {
        (Some(event_id), Some(type_name), Some(timestamp)) if check.errors.is_empty() => Ok(Entry {
            event_id,
            type_name,
            kind,
            timestamp,
            user_id,
            artist_id,
            city,
            genre,
            country,
            live_event_id,
            track_id,
            artist_name,
            live_event_name,
            money,
            engagement,
            envelope: kept_text(),
        }),
        _ => Err(check.errors),
    }
}

/// Collects field errors under one envelope's pointer.
struct Checker<'a> {
    at: &'a str,
    errors: Vec<FieldError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, detail: impl Into<String>) {
        self.errors.push(FieldError {
            pointer: format!("{}{field}", self.at),
            detail: detail.into(),
        });
    }

    fn event_id(&mut self, value: Option<&Value>) -> Option<String> {
        match value {
            None | Some(Value::Null) => self.fail("/event_id", "is required"),
            Some(Value::String(id)) => {
                let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
                if id.is_empty() || id.len() > MAX_ID_CHARS || !id.chars().all(allowed) {
                    self.fail(
                        "/event_id",
                        "must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and '-'",
                    );
                } else {
                    return Some(id.clone());
                }
            }
            Some(_) => self.fail("/event_id", "must be a string"),
        }
        None
    }

    fn schema_version(&mut self, value: Option<&Value>) {
        let supported = SUPPORTED_SCHEMA_VERSIONS
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        match value.map(|v| (v, v.as_u64())) {
            None | Some((Value::Null, _)) => self.fail("/schema_version", "is required"),
            Some((_, Some(version))) if SUPPORTED_SCHEMA_VERSIONS.contains(&version) => {}
            Some((_, Some(version))) => self.fail(
                "/schema_version",
                format!("version {version} is not supported; supported versions: {supported}"),
            ),
            Some(_) => self.fail(
                "/schema_version",
                format!("must be an integer; supported versions: {supported}"),
            ),
        }
    }

    fn type_name(&mut self, value: Option<&Value>) -> Option<String> {
        match value {
            None | Some(Value::Null) => self.fail("/type", "is required"),
            Some(Value::String(name)) if is_well_formed_type(name) => return Some(name.clone()),
            Some(_) => self.fail(
                "/type",
                "must be `family.action` in lower case letters and '_' (for example audio.play)",
            ),
        }
        None
    }

    fn timestamp(&mut self, value: Option<&Value>, context: &ValidationContext) -> Option<OffsetDateTime> {
        let text = match value {
            None | Some(Value::Null) => {
                self.fail("/timestamp", "is required");
                return None;
            }
            Some(Value::String(text)) => text,
            Some(_) => {
                self.fail("/timestamp", "must be an RFC 3339 string with an offset");
                return None;
            }
        };
        let Ok(parsed) = OffsetDateTime::parse(text, &Rfc3339) else {
            self.fail(
                "/timestamp",
                "must be an RFC 3339 timestamp with an offset, such as 2026-11-20T18:04:05Z",
            );
            return None;
        };
        let utc = parsed.to_offset(UtcOffset::UTC);
        let utc = utc.replace_nanosecond(utc.nanosecond() / 1000 * 1000).unwrap_or(utc);
        if !context.window {
            return Some(utc);
        }
        if utc > context.latest_accepted() {
            self.fail("/timestamp", "more than 5 minutes in the future");
        } else if utc < context.oldest_accepted() {
            self.fail("/timestamp", "older than the 24-month retention window");
        } else {
            return Some(utc);
        }
        None
    }

    fn optional_id(&mut self, value: Option<&Value>, field: &str) -> Option<String> {
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) if has_forbidden_chars(id) => self.fail(field, FORBIDDEN_CHARS),
            Some(Value::String(id)) if (1..=MAX_ID_CHARS).contains(&id.chars().count()) => {
                return Some(id.clone());
            }
            Some(Value::String(_)) => self.fail(field, "must be 1 to 128 characters"),
            Some(_) => self.fail(field, "must be a string or null"),
        }
        None
    }

    /// An optional display name: 1 to 200 characters once trimmed. An entry
    /// stored before names were read kept any value there as an unknown key:
    /// read back, a name that is not one is no name, not a failure, so that
    /// entry counts as it always did.
    fn display_name(&mut self, value: Option<&Value>, field: &str, context: &ValidationContext) -> Option<String> {
        let problem = match value {
            None | Some(Value::Null) => return None,
            Some(Value::String(name)) if has_forbidden_chars(name) => FORBIDDEN_CHARS,
            Some(Value::String(name)) if is_invisible(name) => "must show at least one visible character",
            Some(Value::String(name)) if (1..=MAX_NAME_CHARS).contains(&name.trim().chars().count()) => {
                return Some(name.trim().to_owned());
            }
            Some(Value::String(_)) => "must be 1 to 200 characters (not blank)",
            Some(_) => "must be a string or null",
        };
        if context.window {
            self.fail(field, problem);
        }
        None
    }

    fn dimension(&mut self, value: Option<&Value>, field: &str) -> Option<Dimension> {
        let text = self.optional_id(value, field)?;
        let dimension = Dimension::parse(&text);
        if dimension.is_none() {
            self.fail(field, "must not be blank");
        }
        dimension
    }

    fn country(&mut self, value: Option<&Value>) -> Option<String> {
        let text = self.optional_id(value, "/metadata/country")?;
        if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
            Some(text.to_ascii_uppercase())
        } else {
            self.fail("/metadata/country", "must be an ISO 3166-1 alpha-2 code such as NG");
            None
        }
    }

    fn money(&mut self, metadata: &Map<String, Value>) -> Option<Money> {
        let amount = match metadata.get("amount_minor") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_i64() {
                Some(amount) if (0..=MAX_AMOUNT_MINOR).contains(&amount) => Some(amount),
                _ => {
                    self.fail(
                        "/metadata/amount_minor",
                        "must be an integer number of minor units from 0 to 10^12 (1000000000000)",
                    );
                    None
                }
            },
        };
        let currency = match metadata.get("currency") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_str().and_then(Currency::parse) {
                Some(currency) => Some(currency),
                None => {
                    self.fail(
                        "/metadata/currency",
                        "must be an ISO 4217 code of three upper-case letters, such as USD",
                    );
                    None
                }
            },
        };
        match (metadata.get("amount_minor"), metadata.get("currency")) {
            (Some(_), None) => self.fail("/metadata/currency", "is required with amount_minor"),
            (None, Some(_)) => self.fail("/metadata/amount_minor", "is required with currency"),
            _ => {}
        }
        Some(Money {
            amount_minor: amount?,
            currency: currency?,
        })
    }

    fn engagement(&mut self, value: Option<&Value>) -> Engagement {
        let mut engagement = Engagement::default();
        let fields = match value {
            None | Some(Value::Null) => return engagement,
            Some(Value::Object(fields)) => fields,
            Some(_) => {
                self.fail("/engagement", "must be an object");
                return engagement;
            }
        };
        for (name, slot) in [
            ("duration_ms", &mut engagement.duration_ms),
            ("position_ms", &mut engagement.position_ms),
        ] {
            match fields.get(name) {
                None | Some(Value::Null) => {}
                Some(value) => match value.as_u64() {
                    Some(ms) => *slot = Some(ms),
                    None => self.fail(
                        &format!("/engagement/{name}"),
                        "must be an integer number of milliseconds, at least 0",
                    ),
                },
            }
        }
        match fields.get("completion") {
            None | Some(Value::Null) => {}
            Some(value) => match value.as_f64() {
                Some(share) if (0.0..=1.0).contains(&share) => engagement.completion = Some(share),
                _ => self.fail("/engagement/completion", "must be a number from 0.0 to 1.0"),
            },
        }
        engagement
    }

    /// The fields a known type requires, and its own metadata rules. A field
    /// that is present but invalid already has its own error, so only absent
    /// (or null) fields are reported here.
    fn type_rules(
        &mut self,
        spec: &TypeSpec,
        fields: &Map<String, Value>,
        metadata: &Map<String, Value>,
        engagement: &Engagement,
    ) {
        let name = spec.name;
        let present = |object: &Map<String, Value>, key: &str| object.get(key).is_some_and(|v| !v.is_null());
        for requirement in spec.requires {
            let absent: &[(&str, bool)] = match requirement {
                Requirement::ArtistId => &[("/artist_id", !present(fields, "artist_id"))],
                Requirement::UserId => &[("/user_id", !present(fields, "user_id"))],
                Requirement::LiveEventId => &[("/metadata/live_event_id", !present(metadata, "live_event_id"))],
                Requirement::DurationMs => &[(
                    "/engagement/duration_ms",
                    engagement.duration_ms.is_none()
                        && fields
                            .get("engagement")
                            .and_then(|e| e.get("duration_ms"))
                            .is_none_or(Value::is_null),
                )],
                Requirement::Money => &[
                    ("/metadata/amount_minor", !present(metadata, "amount_minor")),
                    ("/metadata/currency", !present(metadata, "currency")),
                ],
            };
            for (field, is_absent) in absent {
                if *is_absent {
                    self.fail(field, format!("is required for {name}"));
                }
            }
        }
        let given = |key: &str| metadata.get(key).filter(|v| !v.is_null());
        if let Some(kind) = given("kind").filter(|_| name == "treasury.money_spent")
            && !kind.as_str().is_some_and(|k| PAYMENT_KINDS.contains(&k))
        {
            self.fail("/metadata/kind", format!("must be one of {}", PAYMENT_KINDS.join(", ")));
        }
        if let Some(purposes) = given("purposes").filter(|_| name == "account.consent_updated")
            && !purposes.as_object().is_some_and(|p| p.values().all(Value::is_boolean))
        {
            self.fail("/metadata/purposes", "must be an object whose values are true or false");
        }
    }
}

/// `family.action`, each part one or more of `[a-z_]`.
fn is_well_formed_type(name: &str) -> bool {
    let part = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    name.split_once('.')
        .is_some_and(|(family, action)| part(family) && part(action))
}
