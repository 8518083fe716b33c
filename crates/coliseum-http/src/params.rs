//! Query parameters: read once into a map, every value checked where it is
//! used, and every failure a `422` problem naming the parameter. A parameter
//! the endpoint does not know is refused too: a typo (`citty=lagos`) must not
//! silently return unfiltered figures.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use crate::problem::AppError;

/// The default and largest page sizes (API.md).
pub const DEFAULT_LIMIT: u32 = 25;
pub const MAX_LIMIT: u32 = 100;

/// The query parameters of a request.
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| AppError::Malformed {
                detail: format!("the query string cannot be read: {rejection}"),
                errors: Vec::new(),
            })?;
        Ok(Self(map))
    }
}

impl From<HashMap<String, String>> for Params {
    fn from(map: HashMap<String, String>) -> Self {
        Self(map)
    }
}

impl Params {
    pub fn into_inner(self) -> HashMap<String, String> {
        self.0
    }

    /// Takes `name` out: a value that is not one of the endpoint's query
    /// parameters (a live topic's `kind`, or what a REST path carries).
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// Refuses any parameter not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<&Self, AppError> {
        let mut unknown: Vec<&String> = self.0.keys().filter(|k| !known.contains(&k.as_str())).collect();
        unknown.sort();
        match unknown.first() {
            Some(name) => Err(AppError::parameter(
                name,
                format!("is not a parameter of this endpoint (known: {})", known.join(", ")),
            )),
            None => Ok(self),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A value that must be present.
    pub fn required(&self, name: &str) -> Result<&str, AppError> {
        self.get(name).ok_or_else(|| AppError::parameter(name, "is required"))
    }

    /// An optional dimension filter: trimmed and lower-cased as stored; blank is refused.
    pub fn dimension(&self, name: &str) -> Result<Option<String>, AppError> {
        match self.get(name) {
            None => Ok(None),
            Some(raw) => {
                let key = coliseum_domain::dimension::normalize(raw);
                if key.is_empty() {
                    Err(AppError::parameter(name, "must not be blank"))
                } else {
                    Ok(Some(key))
                }
            }
        }
    }

    /// `limit`: 1 to 100, 25 when absent.
    pub fn limit(&self) -> Result<u32, AppError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| AppError::parameter("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))),
        }
    }

    /// A whole number in `range`, or `default` when absent.
    pub fn number(&self, name: &str, range: std::ops::RangeInclusive<u32>, default: u32) -> Result<u32, AppError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse::<u32>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
                AppError::parameter(
                    name,
                    format!("must be a whole number from {} to {}", range.start(), range.end()),
                )
            }),
        }
    }

    /// `true` or `false`, or `default` when absent.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, AppError> {
        match self.get(name) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(AppError::parameter(name, "must be true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn limits_default_and_stay_in_bounds() {
        assert_eq!(params(&[]).limit().ok(), Some(25));
        assert_eq!(params(&[("limit", "100")]).limit().ok(), Some(100));
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(params(&[("limit", bad)]).limit().is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_parameters_and_blank_filters_are_refused() {
        let typo = params(&[("citty", "lagos")]);
        let error = typo.only(&["city", "limit"]).expect_err("unknown");
        assert!(error.to_string().contains("citty"));
        assert_eq!(
            params(&[("city", " Lagos ")])
                .dimension("city")
                .ok()
                .flatten()
                .as_deref(),
            Some("lagos")
        );
        assert!(params(&[("city", "  ")]).dimension("city").is_err());
    }
}
