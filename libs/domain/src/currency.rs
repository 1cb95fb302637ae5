//! ISO 4217 currency codes and their number of minor digits.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// Currencies whose minor unit is not the usual hundredth, from the ISO 4217 list
/// (amendment 177). Every code not listed here has 2 minor digits.
const MINOR_DIGITS: &[(&str, u32)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

const DEFAULT_MINOR_DIGITS: u32 = 2;

/// An ISO 4217 alphabetic code: three uppercase ASCII letters. The check is syntactic, so a
/// well-formed code that ISO has not assigned is accepted with 2 minor digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a code such as `"EUR"`; lowercase or padded codes are rejected, not fixed.
    pub fn parse(code: &str) -> Result<Currency, DomainError> {
        let invalid = || DomainError::InvalidCurrency {
            code: code.to_owned(),
        };
        let bytes: [u8; 3] = code.as_bytes().try_into().map_err(|_| invalid())?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(invalid());
        }
        Ok(Currency(bytes))
    }

    pub fn code(&self) -> &str {
        // The constructor admits only ASCII uppercase letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of digits after the decimal point in this currency's amounts.
    pub fn minor_digits(&self) -> u32 {
        let code = self.code();
        MINOR_DIGITS
            .iter()
            .find(|(listed, _)| *listed == code)
            .map_or(DEFAULT_MINOR_DIGITS, |(_, digits)| *digits)
    }

    /// Checks that `amount` has at most this currency's minor digits. `text` is the amount as
    /// written, for the error message; trailing zeros count, so `"1.500"` fails in EUR.
    pub fn check_minor_digits(&self, amount: &Decimal, text: &str) -> Result<(), DomainError> {
        let max = self.minor_digits();
        if amount.scale() <= max {
            return Ok(());
        }
        Err(DomainError::TooManyMinorDigits {
            amount: text.to_owned(),
            currency: self.code().to_owned(),
            scale: amount.scale(),
            max,
        })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = DomainError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::parse(code)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn parse_accepts_uppercase_code() {
        assert_eq!(Currency::parse("EUR").unwrap().code(), "EUR");
    }

    #[test]
    fn parse_rejects_lowercase_code() {
        let error = Currency::parse("eur").unwrap_err();
        assert!(error.to_string().contains("\"eur\""), "{error}");
    }

    #[test]
    fn parse_rejects_wrong_length() {
        let error = Currency::parse("EURO").unwrap_err();
        assert!(error.to_string().contains("\"EURO\""), "{error}");
    }

    #[test]
    fn parse_rejects_digits() {
        assert!(Currency::parse("978").is_err());
    }

    #[test]
    fn parse_rejects_non_ascii_letters() {
        // Three bytes, but not three ASCII letters.
        assert!(Currency::parse("É1").is_err());
    }

    #[test]
    fn minor_digits_per_currency() {
        let cases = [
            ("EUR", 2),
            ("USD", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("ISK", 0),
            ("CLP", 0),
        ];
        for (code, expected) in cases {
            assert_eq!(
                Currency::parse(code).unwrap().minor_digits(),
                expected,
                "{code}"
            );
        }
        for code in ["BHD", "KWD", "OMR", "JOD", "TND", "LYD", "IQD"] {
            assert_eq!(Currency::parse(code).unwrap().minor_digits(), 3, "{code}");
        }
    }

    #[test]
    fn check_minor_digits_accepts_fewer_digits() {
        let eur = Currency::parse("EUR").unwrap();
        assert!(eur.check_minor_digits(&decimal("12.5"), "12.5").is_ok());
        assert!(eur.check_minor_digits(&decimal("12.50"), "12.50").is_ok());
    }

    #[test]
    fn check_minor_digits_rejects_extra_digit() {
        let eur = Currency::parse("EUR").unwrap();
        let error = eur
            .check_minor_digits(&decimal("12.505"), "12.505")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "amount \"12.505\" has 3 decimal places but EUR allows at most 2"
        );
    }

    #[test]
    fn check_minor_digits_counts_trailing_zeros() {
        let jpy = Currency::parse("JPY").unwrap();
        let error = jpy
            .check_minor_digits(&decimal("100.0"), "100.0")
            .unwrap_err();
        assert!(
            error.to_string().contains("JPY allows at most 0"),
            "{error}"
        );
    }

    #[test]
    fn serde_round_trip() {
        let currency: Currency = serde_json::from_str("\"KWD\"").unwrap();
        assert_eq!(serde_json::to_string(&currency).unwrap(), "\"KWD\"");
        assert!(serde_json::from_str::<Currency>("\"kwd\"").is_err());
    }
}
