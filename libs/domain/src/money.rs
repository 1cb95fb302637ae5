//! Decimal amounts from their string form, and money: an amount in a currency.
//!
//! Amounts are `rust_decimal::Decimal`, never floats, so sums of ERP amounts are exact.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::currency::Currency;
use crate::error::DomainError;

/// Parses a plain decimal string: an optional `-`, one or more ASCII digits and an optional
/// fraction (`.` and one or more digits). Exponents, `+`, spaces and digit separators are
/// rejected. The scale of the result is the number of fraction digits as written.
pub fn parse_decimal(text: &str) -> Result<Decimal, DomainError> {
    if !is_plain_decimal(text) {
        return Err(DomainError::InvalidDecimal {
            text: text.to_owned(),
        });
    }
    Decimal::from_str(text).map_err(|_| DomainError::DecimalOutOfRange {
        text: text.to_owned(),
    })
}

fn is_plain_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    all_digits(integer) && fraction.is_none_or(all_digits)
}

/// An amount in a currency, with at most the currency's minor digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// Builds money from a decimal, checking the currency's minor digits.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, DomainError> {
        currency.check_minor_digits(&amount, &amount.to_string())?;
        Ok(Money { amount, currency })
    }

    /// Parses a decimal string such as `"29.75"` as an amount in `currency`.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, DomainError> {
        let amount = parse_decimal(text)?;
        currency.check_minor_digits(&amount, text)?;
        Ok(Money { amount, currency })
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn parse_decimal_keeps_scale() {
        let value = parse_decimal("25.00").unwrap();
        assert_eq!(value.scale(), 2);
        assert_eq!(value.to_string(), "25.00");
    }

    #[test]
    fn parse_decimal_accepts_negative_and_integer() {
        assert_eq!(parse_decimal("-4.75").unwrap().to_string(), "-4.75");
        assert_eq!(parse_decimal("7").unwrap().to_string(), "7");
    }

    #[test]
    fn parse_decimal_rejects_malformed_strings() {
        for text in [
            "", "-", "1.", ".5", "1e3", "+1", " 1", "1 ", "1,5", "1_000", "0x10", "NaN",
        ] {
            let error = parse_decimal(text).unwrap_err();
            assert_eq!(
                error,
                DomainError::InvalidDecimal {
                    text: text.to_owned()
                },
                "{text:?}"
            );
        }
    }

    #[test]
    fn parse_decimal_rejects_out_of_range() {
        let text = "1".repeat(40);
        let error = parse_decimal(&text).unwrap_err();
        assert!(error.to_string().contains("out of range"), "{error}");
    }

    #[test]
    fn money_parse_checks_minor_digits() {
        assert_eq!(
            Money::parse("29.75", eur()).unwrap().amount(),
            parse_decimal("29.75").unwrap()
        );
        let error = Money::parse("29.751", eur()).unwrap_err();
        assert!(error.to_string().contains("\"29.751\""), "{error}");
    }

    #[test]
    fn money_new_checks_minor_digits() {
        let jpy = Currency::parse("JPY").unwrap();
        assert!(Money::new(parse_decimal("100").unwrap(), jpy).is_ok());
        assert!(Money::new(parse_decimal("100.5").unwrap(), jpy).is_err());
    }

    #[test]
    fn money_display_shows_currency() {
        assert_eq!(
            Money::parse("-3.50", eur()).unwrap().to_string(),
            "-3.50 EUR"
        );
    }
}
