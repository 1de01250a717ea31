//! Money as integer minor units plus a currency. Arithmetic is checked (an overflow is an
//! error, never a wrap); JSON carries decimal strings ("12.50"). No floats anywhere.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An ISO 4217 currency this platform knows the minor unit of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// (code, digits after the decimal point). Extend as shops in new countries sign up.
const KNOWN: &[(&str, u8)] = &[
    ("LKR", 2),
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("INR", 2),
    ("AUD", 2),
    ("CAD", 2),
    ("SGD", 2),
    ("AED", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("BHD", 3),
    ("OMR", 3),
];

impl Currency {
    pub const LKR: Currency = Currency { code: *b"LKR", exponent: 2 };
    pub const USD: Currency = Currency { code: *b"USD", exponent: 2 };

    pub fn code(&self) -> &str {
        // Only ASCII codes from KNOWN are ever constructed.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }
    /// Digits after the decimal point (2 for LKR, 0 for JPY).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        KNOWN
            .iter()
            .find(|(c, _)| *c == upper)
            .map(|(c, e)| {
                let b = c.as_bytes();
                Currency { code: [b[0], b[1], b[2]], exponent: *e }
            })
            .ok_or(MoneyError::UnknownCurrency)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount overflows")]
    Overflow,
    #[error("currencies differ")]
    CurrencyMismatch,
    #[error("not a decimal amount")]
    Malformed,
    #[error("more decimal places than the currency has")]
    TooPrecise,
    #[error("unknown currency")]
    UnknownCurrency,
}

/// An amount of one currency in minor units (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }
    pub fn minor(&self) -> i64 {
        self.minor
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        self.minor.checked_add(other.minor).map(|m| Money::from_minor(m, self.currency)).ok_or(MoneyError::Overflow)
    }
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same(other)?;
        self.minor.checked_sub(other.minor).map(|m| Money::from_minor(m, self.currency)).ok_or(MoneyError::Overflow)
    }
    /// Price × quantity.
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        self.minor.checked_mul(quantity).map(|m| Money::from_minor(m, self.currency)).ok_or(MoneyError::Overflow)
    }
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.minor.checked_neg().map(|m| Money::from_minor(m, self.currency)).ok_or(MoneyError::Overflow)
    }

    /// `basis_points`/10000 of this amount, rounded half away from zero to the minor unit.
    /// This is the one place percentages become money; callers apply it once per line.
    pub fn percentage(self, basis_points: i64) -> Result<Money, MoneyError> {
        let product = i128::from(self.minor) * i128::from(basis_points);
        let half = 5_000i128;
        let rounded = if product >= 0 { (product + half) / 10_000 } else { (product - half) / 10_000 };
        i64::try_from(rounded).map(|m| Money::from_minor(m, self.currency)).map_err(|_| MoneyError::Overflow)
    }

    fn same(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch)
        }
    }

    /// Parses "12.5", "12.50", "-3", "0.07" into minor units of `currency`. More decimal
    /// places than the currency has is an error, not a silent rounding.
    pub fn parse(s: &str, currency: Currency) -> Result<Money, MoneyError> {
        let s = s.trim();
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) || (digits.contains('.') && frac.is_empty()) {
            return Err(MoneyError::Malformed);
        }
        let exp = usize::from(currency.exponent);
        if frac.len() > exp {
            return Err(MoneyError::TooPrecise);
        }
        let scale = 10i64.checked_pow(u32::from(currency.exponent)).ok_or(MoneyError::Overflow)?;
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let mut frac_minor: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| MoneyError::Malformed)? };
        for _ in frac.len()..exp {
            frac_minor = frac_minor.checked_mul(10).ok_or(MoneyError::Overflow)?;
        }
        let minor = whole.checked_mul(scale).and_then(|w| w.checked_add(frac_minor)).ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(if negative { -minor } else { minor }, currency))
    }

    /// "1250.00" for 125000 minor units of a 2-digit currency.
    pub fn to_decimal_string(&self) -> String {
        let exp = u32::from(self.currency.exponent);
        let abs = self.minor.unsigned_abs();
        let sign = if self.minor < 0 { "-" } else { "" };
        if exp == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exp);
        format!("{sign}{}.{:0width$}", abs / scale, abs % scale, width = usize::try_from(exp).unwrap_or(2))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// Money goes over the wire as a decimal string; the currency is the shop's and travels
/// beside it where needed.
impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_decimal_string())
    }
}

/// Money written as a JSON number with the currency's digits (`54990.50`), for the few
/// places a client copies the value into a number field. Exact: the digits are the decimal
/// string's, never an f64's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoneyNumber(pub Money);

impl Serialize for MoneyNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        serde_json::value::RawValue::from_string(self.0.to_decimal_string()).map_err(S::Error::custom)?.serialize(s)
    }
}

/// An amount as a client sends it: a decimal string ("12.50") or a JSON number (12.5), read
/// from the number's own text (never through an f64, so 0.1 stays 0.1 and 1e3 is refused
/// like any other malformed amount). The currency comes later, from the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "1250.00")]
pub struct MoneyInput(String);

impl MoneyInput {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn to_money(&self, currency: Currency) -> Result<Money, MoneyError> {
        Money::parse(&self.0, currency)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The amount of `field` in `currency`, or its 422: `MONEY_PRECISION` for more decimals
    /// than the currency has, `VALIDATION_FAILED` for anything that is not an amount.
    pub fn read(&self, field: &str, currency: Currency) -> Result<Money, crate::Problem> {
        self.to_money(currency).map_err(|e| {
            let mut problem = crate::Problem::field(field, &format!("{e}: an amount such as \"1250.00\" or 1250"));
            if matches!(e, MoneyError::TooPrecise) {
                problem.code = "MONEY_PRECISION".into();
            }
            problem
        })
    }
}

impl<'de> Deserialize<'de> for MoneyInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw: Box<serde_json::value::RawValue> = Deserialize::deserialize(d)?;
        let text = raw.get().trim();
        if text.starts_with('"') {
            let s: String = serde_json::from_str(text).map_err(D::Error::custom)?;
            return Ok(Self(s));
        }
        if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Ok(Self(text.to_owned()));
        }
        Err(D::Error::custom("expected an amount: a decimal string or a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_numbers_keep_the_currency_digits() {
        let m = Money::parse("54990.5", Currency::LKR).expect("amount");
        assert_eq!(serde_json::to_string(&MoneyNumber(m)).expect("json"), "54990.50");
        let v: serde_json::Value =
            serde_json::to_value(vec![MoneyNumber(Money::from_minor(-7, Currency::LKR))]).expect("v");
        assert!(v[0].is_number(), "{v}");
    }

    #[test]
    fn parses_and_prints_decimal_strings() {
        let cases = [
            ("12.5", 1250, "12.50"),
            ("12.50", 1250, "12.50"),
            ("-3", -300, "-3.00"),
            ("0.07", 7, "0.07"),
            ("+1", 100, "1.00"),
        ];
        for (input, minor, printed) in cases {
            let m = Money::parse(input, Currency::LKR).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(m.minor(), minor, "{input}");
            assert_eq!(m.to_decimal_string(), printed, "{input}");
        }
        let jpy: Currency = "jpy".parse().unwrap();
        assert_eq!(Money::parse("150", jpy).unwrap().to_decimal_string(), "150");
    }

    #[test]
    fn rejects_bad_amounts() {
        for bad in ["", "abc", "1.", ".5", "1.234", "1,00", "1e3", "--1", "99999999999999999999"] {
            assert!(Money::parse(bad, Currency::LKR).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Money::from_minor(i64::MAX, Currency::LKR);
        assert_eq!(max.checked_add(Money::from_minor(1, Currency::LKR)), Err(MoneyError::Overflow));
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(
            Money::from_minor(1, Currency::LKR).checked_add(Money::from_minor(1, Currency::USD)),
            Err(MoneyError::CurrencyMismatch)
        );
    }

    #[test]
    fn percentage_rounds_half_away_from_zero_once() {
        let m = Money::from_minor(1999, Currency::LKR);
        assert_eq!(m.percentage(1_000).unwrap().minor(), 200); // 199.9 -> 200
        assert_eq!(Money::from_minor(-1999, Currency::LKR).percentage(1_000).unwrap().minor(), -200);
        assert_eq!(Money::from_minor(5, Currency::LKR).percentage(1_000).unwrap().minor(), 1);
        // 0.5 -> 1
    }

    #[test]
    fn money_input_reads_numbers_from_their_text() {
        #[derive(Deserialize)]
        struct Body {
            amount: MoneyInput,
        }
        let cases = [
            (r#"{"amount": 0.1}"#, Ok(10)),
            (r#"{"amount": 12.5}"#, Ok(1250)),
            (r#"{"amount": "12.50"}"#, Ok(1250)),
            (r#"{"amount": 1999.99}"#, Ok(199_999)),
            (r#"{"amount": 92233720368547758.07}"#, Ok(i64::MAX)),
            (r#"{"amount": 1.005}"#, Err(MoneyError::TooPrecise)),
            (r#"{"amount": 1e3}"#, Err(MoneyError::Malformed)),
            (r#"{"amount": 92233720368547758.08}"#, Err(MoneyError::Overflow)),
        ];
        for (json, want) in cases {
            let body: Body = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(body.amount.to_money(Currency::LKR).map(|m| m.minor()), want, "{json}");
        }
        for bad in [r#"{"amount": true}"#, r#"{"amount": null}"#, r#"{"amount": [1]}"#] {
            assert!(serde_json::from_str::<Body>(bad).is_err(), "{bad} should not parse");
        }
    }

    /// Property: for any amount in any digit count, the forms clients send (the decimal
    /// string, JavaScript's shortest number text without trailing zeros, either as a JSON
    /// number or string, and our own `MoneyNumber`) read back to exactly the same minor
    /// units, and one digit more than the currency has is always `TooPrecise`. Seeded, so a
    /// failure reproduces.
    #[test]
    fn every_form_of_every_amount_reads_back_exactly() {
        use rand::{Rng, SeedableRng};
        #[derive(Deserialize)]
        struct Body {
            amount: MoneyInput,
        }
        let read = |json: &str, cur: Currency| -> Result<i64, MoneyError> {
            let body: Body =
                serde_json::from_str(&format!(r#"{{"amount": {json}}}"#)).unwrap_or_else(|e| panic!("{json}: {e}"));
            body.amount.to_money(cur).map(|m| m.minor())
        };
        let currencies: Vec<Currency> = ["LKR", "JPY", "KWD"].iter().map(|c| c.parse().expect("known")).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_122);
        for _ in 0..20_000 {
            let cur = currencies[rng.gen_range(0..currencies.len())];
            let minor: i64 = match rng.gen_range(0..3) {
                0 => rng.gen_range(-1_000..1_000),
                1 => rng.gen_range(-1_000_000_000_000..1_000_000_000_000),
                _ => rng.gen_range(i64::MIN + 1..=i64::MAX),
            };
            let text = Money::from_minor(minor, cur).to_decimal_string();
            let js = if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_owned()
            } else {
                text.clone()
            };
            let number = serde_json::to_string(&MoneyNumber(Money::from_minor(minor, cur))).expect("json");
            for form in [text.clone(), format!("\"{text}\""), js.clone(), format!("\"{js}\""), number] {
                assert_eq!(read(&form, cur), Ok(minor), "{form} in {}", cur.code());
            }
            let digit = rng.gen_range(1..=9);
            let longer = if text.contains('.') { format!("{text}{digit}") } else { format!("{text}.{digit}") };
            assert_eq!(read(&longer, cur), Err(MoneyError::TooPrecise), "{longer} in {}", cur.code());
        }
    }

    #[test]
    fn serializes_as_decimal_string() {
        let json = serde_json::to_string(&Money::from_minor(125_000, Currency::LKR)).unwrap();
        assert_eq!(json, "\"1250.00\"");
    }
}
