//! JSON text into a `serde_json::Value`, refusing any object that repeats a
//! key. `serde_json` keeps the last of repeated keys, so an envelope with
//! `type` twice would mean one thing to us and maybe another to whatever
//! else reads the log: such an envelope is ambiguous and rejected
//! (PASSPORT.md). One pass: the value is built while the keys are checked.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `text`; an object that repeats a key is an error whose message
/// names the key.
pub fn from_str(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let StrictValue(value) = StrictValue::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The start of the error message for a repeated key.
pub const REPEATED_KEY: &str = "repeats the key";

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Number(v.into())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<StrictValue, A::Error> {
        let mut values = Vec::with_capacity(items.size_hint().unwrap_or(0).min(1024));
        while let Some(StrictValue(value)) = items.next_element()? {
            values.push(value);
        }
        Ok(StrictValue(Value::Array(values)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format!("{REPEATED_KEY} `{key}`")));
            }
            let StrictValue(value) = entries.next_value()?;
            map.insert(key, value);
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_at_any_depth_is_refused_and_named() {
        for (text, key) in [
            (r#"{"type": "audio.play", "type": "treasury.tip"}"#, "type"),
            (
                r#"{"metadata": {"amount_minor": 1, "amount_minor": 2}}"#,
                "amount_minor",
            ),
            (r#"[{"a": 1}, {"b": [{"c": 1, "c": 1}]}]"#, "c"),
        ] {
            let error = from_str(text).expect_err(text).to_string();
            assert!(error.starts_with(&format!("{REPEATED_KEY} `{key}`")), "{error}");
        }
    }

    #[test]
    fn anything_else_parses_as_serde_json_does() {
        for text in [
            r#"{"a": [1, -2, 3.5, true, null, "x\u00e9"], "b": {"c": {}}, "d": 18446744073709551615}"#,
            "[]",
            "\"text\"",
            "-0.0",
        ] {
            let strict = from_str(text).expect(text);
            let usual: Value = serde_json::from_str(text).expect(text);
            assert_eq!(strict, usual, "{text}");
        }
        assert!(from_str("{} trailing").is_err());
        assert!(from_str("{\"a\":").is_err());
    }
}
