//! Money: ISO 4217 currencies, their minor units, and conversion to the
//! deployment's base currency with a configured rate table.
//!
//! Conversion is exact rational arithmetic on integers, rounded once to the
//! nearest minor unit with halves away from zero, so that every machine and
//! every replay of the log gives the same figure.

use std::collections::BTreeMap;
use std::fmt;

/// The largest `amount_minor` an entry may carry (PASSPORT.md): ten
/// billion of a two-decimal currency, far beyond any real payment, and far
/// enough below `i64::MAX` that millions of them sum exactly.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// An ISO 4217 code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(code: &str) -> Option<Self> {
        let bytes = code.as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_uppercase) => Some(Self([*a, *b, *c])),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &str {
        // Invariant: built only from three ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point in this currency's minor unit (ISO 4217).
    pub fn minor_unit_exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX" | "UYI" | "VND"
            | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            "CLF" | "UYW" => 4,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A positive exchange rate kept as an exact decimal: `mantissa / 10^scale`
/// units of base currency per unit of the other currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rate {
    mantissa: u64,
    scale: u32,
}

impl Rate {
    fn parse(text: &str) -> Option<Self> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 12 {
            return None;
        }
        let mantissa: u64 = format!("{whole}{fraction}").parse().ok()?;
        let scale = u32::try_from(fraction.len()).ok()?;
        (mantissa > 0).then_some(Self { mantissa, scale })
    }
}

/// Why a rate table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxTableError {
    #[error("`{0}` is not of the form CODE=RATE (for example EUR=1.08)")]
    Malformed(String),
    #[error("`{0}` is not an ISO 4217 code of three upper-case letters")]
    BadCurrency(String),
    #[error("the rate for {0} must be a positive decimal number such as 1.08")]
    BadRate(String),
}

/// The base currency and the rates of the others into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FxTable {
    base: Currency,
    rates: BTreeMap<Currency, Rate>,
}

impl FxTable {
    /// A table that converts nothing but the base currency itself.
    pub fn new(base: Currency) -> Self {
        Self {
            base,
            rates: BTreeMap::new(),
        }
    }

    /// Reads `EUR=1.08,GBP=1.27` (units of base currency per unit); blank is empty.
    pub fn parse(base: Currency, spec: &str) -> Result<Self, FxTableError> {
        let mut table = Self::new(base);
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (code, rate) = pair
                .split_once('=')
                .ok_or_else(|| FxTableError::Malformed(pair.to_owned()))?;
            let code = code.trim();
            let currency = Currency::parse(code).ok_or_else(|| FxTableError::BadCurrency(code.to_owned()))?;
            let rate = Rate::parse(rate.trim()).ok_or_else(|| FxTableError::BadRate(currency.to_string()))?;
            table.rates.insert(currency, rate);
        }
        Ok(table)
    }

    pub fn base(&self) -> Currency {
        self.base
    }

    /// Whether amounts in `currency` can be converted.
    pub fn converts(&self, currency: Currency) -> bool {
        currency == self.base || self.rates.contains_key(&currency)
    }

    /// `amount_minor` of `currency` in minor units of the base currency, or
    /// `None` when no rate is configured for `currency`.
    pub fn to_base_minor(&self, amount_minor: i64, currency: Currency) -> Option<i64> {
        if currency == self.base {
            return Some(amount_minor);
        }
        let rate = self.rates.get(&currency)?;
        let exponent_gap = i64::from(self.base.minor_unit_exponent()) - i64::from(currency.minor_unit_exponent());
        // Checked: an amount and a rate from anywhere in their ranges give a
        // figure or `None`, never a wrapped one.
        let pow10 = |n: u32| 10_i128.checked_pow(n);
        let gap = pow10(exponent_gap.unsigned_abs() as u32)?;
        let mut numerator = i128::from(amount_minor).checked_mul(i128::from(rate.mantissa))?;
        let mut denominator = pow10(rate.scale)?;
        if exponent_gap >= 0 {
            numerator = numerator.checked_mul(gap)?;
        } else {
            denominator = denominator.checked_mul(gap)?;
        }
        i64::try_from(divide_rounding_half_away_from_zero(numerator, denominator)?).ok()
    }
}

/// `numerator / denominator` (denominator > 0) rounded to the nearest
/// integer, halves away from zero; `None` beyond `i128`.
fn divide_rounding_half_away_from_zero(numerator: i128, denominator: i128) -> Option<i128> {
    let quotient = numerator.checked_abs()? / denominator;
    let remainder = numerator.checked_abs()? % denominator;
    // remainder < denominator, so the doubled remainder is compared without overflow.
    let magnitude = if remainder >= denominator - remainder {
        quotient + 1
    } else {
        quotient
    };
    Some(if numerator < 0 { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap_or_else(|| unreachable!())
    }

    fn cur(code: &str) -> Currency {
        Currency::parse(code).unwrap_or_else(|| panic!("{code} is a currency"))
    }

    #[test]
    fn currency_codes_are_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_some());
        for bad in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
            assert_eq!(Currency::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn converts_each_amount_and_rounds_halves_away_from_zero() {
        let fx = FxTable::parse(usd(), "EUR=1.10, GBP=1.27,JPY=0.0067").expect("valid table");
        assert_eq!(fx.to_base_minor(50_000, cur("EUR")), Some(55_000));
        assert_eq!(fx.to_base_minor(5, cur("EUR")), Some(6)); // 5.5 -> 6
        assert_eq!(fx.to_base_minor(-5, cur("EUR")), Some(-6)); // -5.5 -> -6
        assert_eq!(fx.to_base_minor(1, cur("GBP")), Some(1)); // 1.27 -> 1
        // JPY has no minor unit: 1000 yen = 6.70 USD = 670 cents.
        assert_eq!(fx.to_base_minor(1000, cur("JPY")), Some(670));
        assert_eq!(fx.to_base_minor(1234, usd()), Some(1234));
        assert_eq!(fx.to_base_minor(100, cur("NGN")), None);
    }

    #[test]
    fn three_decimal_currencies_divide_down() {
        let fx = FxTable::parse(usd(), "KWD=3.25").expect("valid table");
        // 1.000 KWD (1000 fils) = 3.25 USD.
        assert_eq!(fx.to_base_minor(1000, cur("KWD")), Some(325));
    }

    #[test]
    fn malformed_tables_say_what_is_wrong() {
        assert_eq!(FxTable::parse(usd(), "EUR"), Err(FxTableError::Malformed("EUR".into())));
        assert_eq!(
            FxTable::parse(usd(), "eur=1.1"),
            Err(FxTableError::BadCurrency("eur".into()))
        );
        for rate in ["0", "-1", "1,1", "abc", "", "1e3"] {
            assert!(FxTable::parse(usd(), &format!("EUR={rate}")).is_err(), "{rate}");
        }
        assert!(FxTable::parse(usd(), " ").is_ok());
    }

    proptest::proptest! {
        /// Any amount at any rate, between currencies of any minor units:
        /// the exact rational figure rounded half away from zero, or `None`
        /// when it does not fit; never a wrapped figure, never a panic.
        #[test]
        fn conversion_is_exact_or_refused_over_the_whole_range(
            amount in proptest::num::i64::ANY,
            mantissa in 1_u64..=u64::MAX,
            scale in 0_u32..=12,
            from in proptest::sample::select(vec!["JPY", "EUR", "KWD", "CLF"]),
            base in proptest::sample::select(vec!["JPY", "USD", "KWD", "CLF"]),
        ) {
            let table = FxTable {
                base: cur(base),
                rates: BTreeMap::from([(cur(from), Rate { mantissa, scale })]),
            };
            let converted = table.to_base_minor(amount, cur(from));
            if from == base {
                proptest::prop_assert_eq!(converted, Some(amount));
                return Ok(());
            }
            // The reference, computed another way. Wherever it overflows
            // i128 the figure is beyond 10^21, so no i64 can hold it.
            let gap = i64::from(cur(base).minor_unit_exponent()) - i64::from(cur(from).minor_unit_exponent());
            let expected = (|| {
                let numerator = i128::from(amount)
                    .checked_mul(i128::from(mantissa))?
                    .checked_mul(10_i128.pow(gap.max(0) as u32))?;
                let denominator = 10_i128.pow(scale + (-gap).max(0) as u32);
                let half = if numerator < 0 { -denominator } else { denominator };
                let rounded = numerator.checked_mul(2)?.checked_add(half)? / (2 * denominator);
                i64::try_from(rounded).ok()
            })();
            proptest::prop_assert_eq!(converted, expected);
        }
    }
}
