//! Realistic synthetic Passport traffic, deterministic by seed: artists whose
//! popularity follows a power law, fans with home cities and tastes, live
//! events, plays of every length (previews included), votes, tickets and
//! scans, payments in several currencies, a sprinkle of late entries,
//! inconsistent spellings, and the odd entry type this version does not know.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use coliseum_signatures::passport::WebhookKey;

/// Exchange rates for the currencies this traffic pays in, for engines whose
/// operator configured none (the demo, the benchmarks).
pub const FX_RATES: &str = "EUR=1.08,GBP=1.27,NGN=0.00065";

const CITIES: &[(&str, &str)] = &[
    ("Lagos", "NG"),
    ("Accra", "GH"),
    ("Nairobi", "KE"),
    ("London", "GB"),
    ("Paris", "FR"),
    ("Berlin", "DE"),
    ("New York", "US"),
    ("Los Angeles", "US"),
    ("Atlanta", "US"),
    ("São Paulo", "BR"),
    ("Mexico City", "MX"),
    ("Tokyo", "JP"),
    ("Seoul", "KR"),
    ("Mumbai", "IN"),
    ("Johannesburg", "ZA"),
    ("Kingston", "JM"),
    ("Toronto", "CA"),
    ("Madrid", "ES"),
    ("Lima", "PE"),
    ("Oslo", "NO"),
];
const GENRES: &[&str] = &[
    "afrobeats",
    "amapiano",
    "hip-hop",
    "r&b",
    "pop",
    "house",
    "techno",
    "jazz",
    "reggae",
    "dancehall",
    "k-pop",
    "latin",
    "rock",
    "gospel",
    "highlife",
];
/// Stage names are a first word and a second, in turn: 48 × 40 distinct
/// names before a number is added.
const FIRST_NAMES: &[&str] = &[
    "Ayo", "Tems", "Kelechi", "Nova", "Sade", "Bisi", "Zara", "Kwame", "Amara", "Juno", "Lior", "Mira", "Tunde",
    "Ines", "Kofi", "Lena", "Obi", "Rafa", "Sol", "Yemi", "Ada", "Bayo", "Cleo", "Dami", "Eko", "Femi", "Gigi", "Hana",
    "Ife", "Jide", "Kemi", "Lola", "Mosa", "Nia", "Ola", "Pax", "Remi", "Simi", "Tayo", "Uche", "Vero", "Wale", "Xola",
    "Yara", "Zeal", "Asa", "Bolu", "Chi",
];
const SECOND_NAMES: &[&str] = &[
    "Adeyemi",
    "Okafor",
    "Mensah",
    "Diallo",
    "Santos",
    "Moreau",
    "Kamara",
    "Osei",
    "Silva",
    "Nakamura",
    "Eze",
    "Balogun",
    "Costa",
    "Dube",
    "Haile",
    "Ibe",
    "Jalloh",
    "Kante",
    "Lopes",
    "Mbeki",
    "Nwosu",
    "Owusu",
    "Pereira",
    "Quaye",
    "Rossi",
    "Sow",
    "Toure",
    "Udo",
    "Vieira",
    "Wright",
    "& the Horns",
    "Collective",
    "Sound System",
    "Quartet",
    "Brass Band",
    "Trio",
    "Ensemble",
    "Crew",
    "Orchestra",
    "Choir",
];
/// Live events are named after their artist and one of these.
const EVENT_NAMES: &[&str] = &[
    "Live",
    "Arena Night",
    "Unplugged",
    "Festival Set",
    "Homecoming",
    "World Tour",
];

/// The stage name of the `i`th artist: the same for the same `i`, always.
/// Neighbours differ in both words (the most popular artists are the first
/// ones); 17 and 40 share no factor, so no pair of words repeats.
fn artist_name(i: usize) -> String {
    let (round, place) = (i / FIRST_NAMES.len(), i % FIRST_NAMES.len());
    let first = FIRST_NAMES[place];
    let second = SECOND_NAMES[(17 * round + 7 * place) % SECOND_NAMES.len()];
    match i / (FIRST_NAMES.len() * SECOND_NAMES.len()) {
        0 => format!("{first} {second}"),
        n => format!("{first} {second} {}", n + 1),
    }
}

/// Currencies of payments, with their share; the base currency dominates.
const CURRENCIES: &[(&str, u32)] = &[("USD", 70), ("EUR", 12), ("GBP", 10), ("NGN", 8)];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorConfig {
    pub artists: u32,
    pub days: u32,
    pub seed: u64,
    /// The end of the period (exclusive).
    pub until: OffsetDateTime,
    /// How many historical entries will be drawn, to spread them evenly.
    pub total: u64,
}

struct Artist {
    id: String,
    name: String,
    genre: &'static str,
    city: usize,
    live_events: Vec<String>,
}

struct Fan {
    id: String,
    city: usize,
    genre: &'static str,
}

/// A seeded stream of envelopes.
pub struct Generator {
    config: GeneratorConfig,
    rng: ChaCha8Rng,
    artists: Vec<Artist>,
    /// Cumulative popularity weights, for sampling artists by rank.
    popularity: Vec<f64>,
    fans: Vec<Fan>,
    drawn: u64,
    deliveries: u64,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("config", &self.config)
            .field("drawn", &self.drawn)
            .finish()
    }
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let artists: Vec<Artist> = (0..config.artists)
            .map(|i| {
                let live_events = (0..rng.random_range(1..=3)).map(|e| format!("live_{i}_{e}")).collect();
                Artist {
                    id: format!("art_{i}"),
                    name: artist_name(i as usize),
                    genre: GENRES[rng.random_range(0..GENRES.len())],
                    city: rng.random_range(0..CITIES.len()),
                    live_events,
                }
            })
            .collect();
        let mut total = 0.0;
        let popularity = (1..=artists.len())
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(1.1);
                total
            })
            .collect();
        let fan_count = (config.artists as usize * 40).clamp(100, 1_000_000);
        let fans = (0..fan_count)
            .map(|i| Fan {
                id: format!("fan_{i}"),
                city: rng.random_range(0..CITIES.len()),
                genre: GENRES[rng.random_range(0..GENRES.len())],
            })
            .collect();
        Self {
            config,
            rng,
            artists,
            popularity,
            fans,
            drawn: 0,
            deliveries: 0,
        }
    }

    /// The next entry of the historical period, in time order but for a few
    /// late ones (up to six hours behind).
    pub fn next_historical(&mut self) -> Value {
        let span = Duration::days(i64::from(self.config.days));
        let start = self.config.until - span;
        let position = (self.drawn as f64 + self.rng.random::<f64>()) / self.config.total.max(1) as f64;
        let mut at = start + span * position.min(0.999_999);
        if self.rng.random_bool(0.01) {
            at -= Duration::seconds(self.rng.random_range(60..6 * 3600));
        }
        self.envelope_at(at.max(start))
    }

    /// An entry stamped `at`.
    pub fn envelope_at(&mut self, at: OffsetDateTime) -> Value {
        self.drawn += 1;
        let event_id = format!("gen-{:x}-{:010}", self.config.seed, self.drawn);
        let artist = self.pick_artist();
        let fan = self.pick_fan(artist);
        let (artist_id, artist_name, artist_genre, live_events) = {
            let a = &self.artists[artist];
            (a.id.clone(), a.name.clone(), a.genre, a.live_events.clone())
        };
        let fan_id = self.fans[fan].id.clone();
        let (city, country) = CITIES[self.fans[fan].city];
        let event = self.rng.random_range(0..live_events.len());
        let live_event = live_events[event].clone();
        let live_event_name = format!("{artist_name} {}", EVENT_NAMES[(artist + event) % EVENT_NAMES.len()]);
        let mut metadata = json!({
            "city": self.spelled(city),
            "country": country,
            "genre": self.spelled(artist_genre),
            "artist_name": artist_name,
        });
        let mut engagement = Value::Null;
        let roll: u32 = self.rng.random_range(0..1000);
        let entry_type = match roll {
            0..=549 => {
                let preview = self.rng.random_bool(0.2);
                let duration = if preview {
                    self.rng.random_range(3_000..30_000)
                } else {
                    self.rng.random_range(30_000..300_000)
                };
                engagement = json!({"duration_ms": duration, "completion": ((duration as f64 / 300_000.0) * 100.0).round() / 100.0});
                metadata["track_id"] = json!(format!("trk_{}_{}", artist, self.rng.random_range(0..12)));
                "audio.play"
            }
            550..=629 => "audio.complete",
            630..=679 => "audio.skip",
            680..=729 => "audio.like",
            730..=749 => "audio.playlist_add",
            750..=789 => "social.follow",
            790..=799 => "social.share",
            800..=809 => "social.comment",
            810..=859 => "vote.cast",
            860..=864 => "vote.retracted",
            865..=884 => {
                metadata["live_event_id"] = json!(live_event);
                metadata["live_event_name"] = json!(live_event_name);
                "event.rsvp"
            }
            885..=899 => {
                metadata["live_event_id"] = json!(live_event);
                metadata["live_event_name"] = json!(live_event_name);
                "ticket.purchased"
            }
            900..=914 => {
                metadata["live_event_id"] = json!(live_event);
                metadata["live_event_name"] = json!(live_event_name);
                "event.attended"
            }
            915..=924 => {
                metadata["live_event_id"] = json!(live_event);
                metadata["live_event_name"] = json!(live_event_name);
                "stream.joined"
            }
            925..=949 => {
                self.add_payment(&mut metadata, 500..15_000);
                metadata["kind"] = json!(["ticket", "merch", "subscription", "release"][self.rng.random_range(0..4)]);
                "treasury.money_spent"
            }
            950..=964 => {
                self.add_payment(&mut metadata, 100..5_000);
                "treasury.tip"
            }
            965..=966 => {
                self.add_payment(&mut metadata, 500..5_000);
                "treasury.refunded"
            }
            967 => {
                self.add_payment(&mut metadata, 50_000..500_000);
                "treasury.patronage"
            }
            968..=977 => "subscription.started",
            978..=987 => "social.profile_view",
            988..=997 => "badge.earned",
            // A type from a newer Passport: stored, never counted.
            _ => "hologram.beamed",
        };
        json!({
            "event_id": event_id,
            "schema_version": 1,
            "type": entry_type,
            "timestamp": at.format(&Rfc3339).unwrap_or_default(),
            "user_id": fan_id,
            "artist_id": artist_id,
            "metadata": metadata,
            "engagement": engagement,
        })
    }

    /// A fresh `webhook-id` for a delivery.
    pub fn delivery_id(&mut self) -> String {
        self.deliveries += 1;
        format!("msg_{:x}_{}", self.config.seed, self.deliveries)
    }

    fn pick_artist(&mut self) -> usize {
        let total = self.popularity.last().copied().unwrap_or(1.0);
        let target = self.rng.random::<f64>() * total;
        self.popularity
            .partition_point(|&cumulative| cumulative < target)
            .min(self.artists.len() - 1)
    }

    /// Fans mostly follow artists of their genre or city.
    fn pick_fan(&mut self, artist: usize) -> usize {
        for _ in 0..8 {
            let fan = self.rng.random_range(0..self.fans.len());
            let f = &self.fans[fan];
            let a = &self.artists[artist];
            if f.genre == a.genre || f.city == a.city || self.rng.random_bool(0.3) {
                return fan;
            }
        }
        self.rng.random_range(0..self.fans.len())
    }

    /// Senders are not consistent about case and spacing.
    fn spelled(&mut self, name: &str) -> String {
        match self.rng.random_range(0..20) {
            0 => format!("{} ", name.to_lowercase()),
            1 => name.to_uppercase(),
            _ => name.to_owned(),
        }
    }

    fn add_payment(&mut self, metadata: &mut Value, range: std::ops::Range<i64>) {
        let roll = self.rng.random_range(0..100);
        let mut cumulative = 0;
        let currency = CURRENCIES
            .iter()
            .find(|(_, share)| {
                cumulative += share;
                roll < cumulative
            })
            .map_or("USD", |(code, _)| code);
        let scale = if currency == "NGN" { 1500 } else { 1 };
        metadata["amount_minor"] = json!(self.rng.random_range(range) * scale);
        metadata["currency"] = json!(currency);
    }
}

/// A delivery as a sender would make it: the body and its signature headers.
pub fn signed_delivery(key: &WebhookKey, envelopes: &[Value], timestamp: i64, webhook_id: &str) -> Value {
    let body = if envelopes.len() == 1 {
        envelopes[0].to_string()
    } else {
        json!({"events": envelopes}).to_string()
    };
    json!({
        "webhook_id": webhook_id,
        "webhook_timestamp": timestamp,
        "webhook_signature": key.sign(webhook_id, timestamp, body.as_bytes()),
        "body": body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coliseum_domain::passport::{ValidationContext, validate_envelope};
    use time::macros::datetime;

    fn config(seed: u64) -> GeneratorConfig {
        GeneratorConfig {
            artists: 50,
            days: 7,
            seed,
            until: datetime!(2026-11-20 12:00 UTC),
            total: 2000,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let mut a = Generator::new(config(7));
        let mut b = Generator::new(config(7));
        let mut c = Generator::new(config(8));
        let first: Vec<Value> = (0..200).map(|_| a.next_historical()).collect();
        assert_eq!(first, (0..200).map(|_| b.next_historical()).collect::<Vec<_>>());
        assert_ne!(first, (0..200).map(|_| c.next_historical()).collect::<Vec<_>>());
    }

    #[test]
    fn generated_entries_are_valid_skewed_and_varied() {
        let config = config(1);
        let mut generator = Generator::new(config);
        let context = ValidationContext::at(config.until);
        let mut per_artist = std::collections::HashMap::<String, u32>::new();
        let mut types = std::collections::HashSet::new();
        let mut unrecognized = 0;
        for _ in 0..config.total {
            let envelope = generator.next_historical();
            let entry = validate_envelope(&envelope, "", &context).unwrap_or_else(|e| panic!("{envelope}: {e:?}"));
            assert!(entry.timestamp < config.until && entry.timestamp >= config.until - Duration::days(7));
            unrecognized += usize::from(!entry.is_recognized());
            types.insert(entry.type_name.clone());
            assert!(entry.artist_name.is_some(), "every entry names its artist");
            if entry.live_event_id.is_some() {
                assert!(entry.live_event_name.is_some(), "and its live event");
            }
            *per_artist.entry(entry.artist_id.unwrap_or_default()).or_default() += 1;
        }
        assert!(types.len() >= 20, "{types:?}");
        assert!(unrecognized > 0, "some entries are of an unknown type");
        let top = per_artist.get("art_0").copied().unwrap_or(0);
        let tail = per_artist.get("art_49").copied().unwrap_or(0);
        assert!(top > 5 * tail.max(1), "popularity is skewed: {top} vs {tail}");
    }

    #[test]
    fn stage_names_are_distinct() {
        let names: std::collections::HashSet<String> = (0..5_000).map(artist_name).collect();
        assert_eq!(names.len(), 5_000);
        assert_eq!(artist_name(0), "Ayo Adeyemi");
    }
}
