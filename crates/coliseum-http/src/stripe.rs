//! Stripe webhooks: the `Stripe-Signature` check, and what each handled
//! event means for a customer's plan (the store applies it once, in order).

use coliseum_domain::plans::Plan;
use serde_json::{Value, json};

use crate::settings::StripeSettings;

pub use coliseum_signatures::stripe::{SignatureError, TOLERANCE_S, sign, verify};

/// What an event means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// A customer's plan or link changes (or both).
    Plan {
        customer: String,
        link_user: Option<i64>,
        plan: Option<Plan>,
        /// Why `plan` is `None` when the event was about the plan.
        note: Option<String>,
    },
    /// A fan's payment to an artist: a Passport `treasury.money_spent` envelope.
    Payment(Value),
    /// An event this engine does not act on.
    Ignored(String),
}

/// A verified event, read.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub created: i64,
    pub meaning: Meaning,
}

impl Event {
    /// Orders one customer's events: by `created` (seconds), and within a
    /// second by how late in a subscription's life the event type comes,
    /// so that a same-second `created` never overrides an `updated` or a
    /// `deleted`.
    pub fn order(&self) -> i64 {
        let stage = match self.kind.as_str() {
            "checkout.session.completed" => 0,
            "customer.subscription.created" => 1,
            "customer.subscription.deleted" => 3,
            _ => 2,
        };
        self.created * 4 + stage
    }
}

/// Reads a verified event body; `Err` names what is missing from an event
/// type that is handled.
pub fn read_event(body: &[u8], settings: &StripeSettings) -> Result<Event, String> {
    let event: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let id = text(&event, "id").ok_or("the event has no `id`")?;
    let kind = text(&event, "type").ok_or("the event has no `type`")?;
    let created = event
        .get("created")
        .and_then(Value::as_i64)
        .ok_or("the event has no `created`")?;
    let object = event.pointer("/data/object").ok_or("the event has no `data.object`")?;
    let meaning = meaning(&kind, object, created, settings)?;
    Ok(Event {
        id,
        kind,
        created,
        meaning,
    })
}

/// An id given as a string or as an expanded object.
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) => Some(id.clone()),
        object => object.get("id").and_then(Value::as_str).map(str::to_owned),
    }
}

fn metadata_user(object: &Value) -> Option<i64> {
    let value = object.pointer("/metadata/coliseum_user_id")?;
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

/// The price an invoice renews: of its lines that are not prorations (a
/// mid-cycle change lists the unused time of the old price too), the one
/// whose period ends last.
fn invoice_price(invoice: &Value) -> Option<String> {
    let lines = invoice.pointer("/lines/data")?.as_array()?;
    lines
        .iter()
        .filter(|line| line.get("proration").and_then(Value::as_bool) != Some(true))
        .max_by_key(|line| line.pointer("/period/end").and_then(Value::as_i64).unwrap_or(0))
        .and_then(|line| {
            id_of(line.get("price")).or_else(|| {
                line.pointer("/pricing/price_details/price")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
        })
}

fn meaning(kind: &str, object: &Value, created: i64, settings: &StripeSettings) -> Result<Meaning, String> {
    let customer =
        || id_of(object.get("customer")).ok_or_else(|| format!("a {kind} event needs `data.object.customer`"));
    let plan_of = |price: Option<String>| -> (Option<Plan>, Option<String>) {
        match price {
            None => (None, Some("the object names no price".to_owned())),
            Some(price) => match settings.plan_of_price(&price) {
                Some(plan) => (Some(plan), None),
                None => (None, Some(format!("price `{price}` is not mapped to a plan"))),
            },
        }
    };
    let (plan, note) = match kind {
        "checkout.session.completed" => {
            let link = object
                .get("client_reference_id")
                .and_then(Value::as_str)
                .and_then(|id| id.parse().ok())
                .or_else(|| metadata_user(object));
            return Ok(Meaning::Plan {
                customer: customer()?,
                link_user: link,
                plan: None,
                note: None,
            });
        }
        "customer.subscription.created" | "customer.subscription.updated" => {
            let status = object.get("status").and_then(Value::as_str).unwrap_or_default();
            match status {
                "active" | "trialing" => plan_of(id_of(object.pointer("/items/data/0/price"))),
                "unpaid" | "canceled" | "incomplete_expired" | "paused" => (Some(Plan::Free), None),
                other => (None, Some(format!("status `{other}` keeps the plan as it is"))),
            }
        }
        "customer.subscription.deleted" => (Some(Plan::Free), None),
        // Stripe retries a failed payment (the subscription is `past_due`
        // meanwhile, and keeps its plan); an invoice left unpaid after the
        // last attempt (`next_payment_attempt: null`) ends the plan.
        "invoice.payment_failed" => match object.get("next_payment_attempt") {
            Some(Value::Null) | None => (Some(Plan::Free), None),
            Some(_) => (
                None,
                Some("Stripe will retry the payment; the plan stays meanwhile".to_owned()),
            ),
        },
        "invoice.paid" => plan_of(invoice_price(object)),
        "payment_intent.succeeded" => return Ok(payment(object, created, settings)),
        other => return Ok(Meaning::Ignored(format!("`{other}` events are not handled"))),
    };
    Ok(Meaning::Plan {
        customer: customer()?,
        link_user: metadata_user(object),
        plan,
        note,
    })
}

/// A payment to an artist (`metadata.artist_id`) as a Passport entry, when
/// configured; the Stripe object id makes the entry's event id, so a
/// redelivery is a duplicate in the log as well.
fn payment(object: &Value, created: i64, settings: &StripeSettings) -> Meaning {
    if !settings.passport_payments {
        return Meaning::Ignored("payments are not appended to Passport on this server".to_owned());
    }
    let meta = |key: &str| object.pointer(&format!("/metadata/{key}")).and_then(Value::as_str);
    let (Some(artist), Some(id)) = (meta("artist_id"), object.get("id").and_then(Value::as_str)) else {
        return Meaning::Ignored("the payment names no artist (`metadata.artist_id`)".to_owned());
    };
    let amount = object
        .get("amount_received")
        .or_else(|| object.get("amount"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let currency = object
        .get("currency")
        .and_then(Value::as_str)
        .unwrap_or("usd")
        .to_uppercase();
    let timestamp = time::OffsetDateTime::from_unix_timestamp(created)
        .ok()
        .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok());
    let mut metadata = json!({
        "amount_minor": amount,
        "currency": currency,
        "kind": meta("kind").unwrap_or("other"),
        "source": "stripe",
    });
    for key in ["city", "genre", "live_event_id", "country"] {
        if let Some(value) = meta(key) {
            metadata[key] = json!(value);
        }
    }
    Meaning::Payment(json!({
        "event_id": format!("stripe:{id}"),
        "schema_version": 1,
        "type": "treasury.money_spent",
        "timestamp": timestamp,
        "user_id": meta("user_id"),
        "artist_id": artist,
        "metadata": metadata,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, object: Value) -> Vec<u8> {
        json!({"id": "evt_1", "type": kind, "created": 1_700_000_000, "data": {"object": object}})
            .to_string()
            .into_bytes()
    }

    fn settings() -> StripeSettings {
        StripeSettings {
            secret_key: None,
            api_base: String::new(),
            prices: vec![
                (Plan::Basic, "price_basic".to_owned()),
                (Plan::Pro, "price_pro".to_owned()),
            ],
            passport_payments: true,
        }
    }

    #[test]
    fn subscriptions_map_prices_and_statuses_to_plans() {
        let subscription = |status: &str, price: &str| {
            json!({"customer": "cus_1", "status": status, "metadata": {"coliseum_user_id": "7"},
                   "items": {"data": [{"price": {"id": price}}]}})
        };
        let read = |kind: &str, object: Value| read_event(&event(kind, object), &settings()).expect("read").meaning;
        assert_eq!(
            read("customer.subscription.created", subscription("active", "price_pro")),
            Meaning::Plan {
                customer: "cus_1".into(),
                link_user: Some(7),
                plan: Some(Plan::Pro),
                note: None
            }
        );
        let Meaning::Plan {
            plan: None,
            note: Some(note),
            ..
        } = read("customer.subscription.updated", subscription("active", "price_unknown"))
        else {
            panic!("an unknown price changes no plan");
        };
        assert!(note.contains("price_unknown"));
        for status in ["unpaid", "canceled"] {
            let Meaning::Plan { plan, .. } = read("customer.subscription.updated", subscription(status, "price_pro"))
            else {
                panic!("a plan event");
            };
            assert_eq!(plan, Some(Plan::Free), "{status}");
        }
        let Meaning::Plan { plan, .. } = read("customer.subscription.updated", subscription("past_due", "price_pro"))
        else {
            panic!("a plan event");
        };
        assert_eq!(plan, None, "past due keeps the plan while Stripe retries");
        let Meaning::Plan { plan, .. } = read(
            "invoice.payment_failed",
            json!({"customer": "cus_1", "next_payment_attempt": 1_700_086_400}),
        ) else {
            panic!("a plan event");
        };
        assert_eq!(plan, None, "Stripe retries: the plan stays");
        let Meaning::Plan { plan, .. } = read(
            "invoice.payment_failed",
            json!({"customer": "cus_1", "next_payment_attempt": null}),
        ) else {
            panic!("a plan event");
        };
        assert_eq!(plan, Some(Plan::Free), "no attempt left: unpaid");
        let upgrade = json!({"customer": "cus_1", "lines": {"data": [
            {"proration": true, "price": {"id": "price_basic"}, "period": {"end": 1_700_500_000}},
            {"proration": false, "price": {"id": "price_pro"}, "period": {"end": 1_702_000_000}},
            {"proration": false, "price": {"id": "price_basic"}, "period": {"end": 1_699_000_000}},
        ]}});
        let Meaning::Plan { plan, .. } = read("invoice.paid", upgrade) else {
            panic!("a plan event");
        };
        assert_eq!(
            plan,
            Some(Plan::Pro),
            "the renewed price, not the proration of the old one"
        );
        let checkout = read(
            "checkout.session.completed",
            json!({"customer": "cus_1", "client_reference_id": "42"}),
        );
        assert_eq!(
            checkout,
            Meaning::Plan {
                customer: "cus_1".into(),
                link_user: Some(42),
                plan: None,
                note: None
            }
        );
        assert!(matches!(read("charge.captured", json!({})), Meaning::Ignored(_)));
        assert!(
            read_event(&event("invoice.paid", json!({})), &settings()).is_err(),
            "no customer"
        );
    }

    #[test]
    fn a_later_type_wins_within_the_same_second() {
        let at = |kind: &str| {
            Event {
                id: String::new(),
                kind: kind.to_owned(),
                created: 10,
                meaning: Meaning::Ignored(String::new()),
            }
            .order()
        };
        assert!(at("customer.subscription.created") < at("customer.subscription.updated"));
        assert!(at("customer.subscription.updated") < at("customer.subscription.deleted"));
        let later = Event {
            id: String::new(),
            kind: "customer.subscription.created".into(),
            created: 11,
            meaning: Meaning::Ignored(String::new()),
        };
        assert!(at("customer.subscription.deleted") < later.order());
    }

    #[test]
    fn payments_to_an_artist_become_money_spent_entries() {
        let object = json!({"id": "pi_1", "amount_received": 2500, "currency": "eur",
                            "metadata": {"artist_id": "art_1", "user_id": "fan_1", "kind": "ticket", "city": "Lagos"}});
        let Meaning::Payment(entry) = read_event(&event("payment_intent.succeeded", object), &settings())
            .expect("read")
            .meaning
        else {
            panic!("a payment");
        };
        assert_eq!(entry["type"], "treasury.money_spent");
        assert_eq!(entry["event_id"], "stripe:pi_1");
        assert_eq!(entry["metadata"]["amount_minor"], 2500);
        assert_eq!(entry["metadata"]["currency"], "EUR");
        assert_eq!(entry["metadata"]["city"], "Lagos");
        assert_eq!(entry["timestamp"], "2023-11-14T22:13:20Z");
    }
}
