//! Number and date formatting per customer language. The label wording lives in the templates;
//! this module only decides which locale a customer gets and how numbers and dates look in it.

use chrono::{Datelike, NaiveDate};

/// A locale the templates have labels for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    English,
    German,
}

const ENGLISH_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Locale {
    /// Picks the locale for a BCP 47 tag by its primary language subtag (`de-AT` is German).
    /// Languages without labels, and an empty tag, fall back to English.
    pub fn from_language_tag(tag: &str) -> Locale {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("de") {
            Locale::German
        } else {
            Locale::English
        }
    }

    /// Returns the ISO 639-1 code, which is also the key of the template's label table and the value
    /// of Typst's `text(lang)`.
    pub fn code(self) -> &'static str {
        match self {
            Locale::English => "en",
            Locale::German => "de",
        }
    }

    fn separators(self) -> (char, char) {
        match self {
            Locale::English => ('.', ','),
            Locale::German => (',', '.'),
        }
    }

    /// Rewrites a plain decimal string (`-1234.5`) with this locale's decimal separator and
    /// thousands grouping. The digits are kept exactly, so nothing is rounded or recomputed.
    /// A value that is not a plain decimal is returned unchanged.
    pub fn format_decimal(self, value: &str) -> String {
        let value = value.trim();
        let Some((sign, integer, fraction)) = split_decimal(value) else {
            return value.to_owned();
        };

        let (decimal_separator, group_separator) = self.separators();
        let mut formatted = String::with_capacity(value.len() + value.len() / 3);
        formatted.push_str(sign);
        for (index, digit) in integer.chars().enumerate() {
            if index > 0 && (integer.len() - index) % 3 == 0 {
                formatted.push(group_separator);
            }
            formatted.push(digit);
        }
        if let Some(fraction) = fraction {
            formatted.push(decimal_separator);
            formatted.push_str(fraction);
        }
        formatted
    }

    /// Formats a percentage rate given as a decimal string (`19` becomes `19%` or `19 %`).
    pub fn format_percent(self, rate: &str) -> String {
        let number = self.format_decimal(rate);
        match self {
            Locale::English => format!("{number}%"),
            // German typesetting separates the number from the percent sign.
            Locale::German => format!("{number}\u{a0}%"),
        }
    }

    /// Formats a calendar date: `13 December 2021` in English, `13.12.2021` in German.
    pub fn format_date(self, date: NaiveDate) -> String {
        match self {
            Locale::English => {
                let month = ENGLISH_MONTHS[date.month0() as usize];
                format!("{} {month} {}", date.day(), date.year())
            }
            Locale::German => date.format("%d.%m.%Y").to_string(),
        }
    }
}

/// Splits `[+-]digits[.digits]` into sign, integer digits and fraction digits.
fn split_decimal(value: &str) -> Option<(&str, &str, Option<&str>)> {
    let sign_length = usize::from(value.starts_with(['-', '+']));
    let (sign, unsigned) = value.split_at(sign_length);
    let (integer, fraction) = match unsigned.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (unsigned, None),
    };

    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(integer) || !fraction.is_none_or(all_digits) {
        return None;
    }
    Some((sign, integer, fraction))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tag_picks_locale() {
        let cases = [
            ("de", Locale::German),
            ("de-AT", Locale::German),
            ("DE_ch", Locale::German),
            ("en", Locale::English),
            ("en-US", Locale::English),
            ("pt", Locale::English),
            ("", Locale::English),
            ("  ", Locale::English),
            ("deu", Locale::English),
        ];
        for (tag, expected) in cases {
            assert_eq!(Locale::from_language_tag(tag), expected, "tag {tag:?}");
        }
    }

    #[test]
    fn decimal_formats_per_locale() {
        let cases = [
            ("0.99", "0.99", "0,99"),
            ("1", "1", "1"),
            ("999.00", "999.00", "999,00"),
            ("1000", "1,000", "1.000"),
            ("1234.50", "1,234.50", "1.234,50"),
            ("-1234567.891", "-1,234,567.891", "-1.234.567,891"),
            ("+12.5", "+12.5", "+12,5"),
            ("100000", "100,000", "100.000"),
            (" 42.10 ", "42.10", "42,10"),
        ];
        for (input, english, german) in cases {
            assert_eq!(
                Locale::English.format_decimal(input),
                english,
                "input {input:?}"
            );
            assert_eq!(
                Locale::German.format_decimal(input),
                german,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn decimal_keeps_unparsable_values() {
        for input in [
            "", "-", "1.", ".5", "1.2.3", "1,5", "12a", "1e3", "--1", "½",
        ] {
            assert_eq!(
                Locale::German.format_decimal(input),
                input.trim(),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn percent_formats_per_locale() {
        assert_eq!(Locale::English.format_percent("19"), "19%");
        assert_eq!(Locale::German.format_percent("7.5"), "7,5\u{a0}%");
    }

    #[test]
    fn date_formats_per_locale() {
        let date = NaiveDate::from_ymd_opt(2022, 1, 2).unwrap();
        assert_eq!(Locale::English.format_date(date), "2 January 2022");
        assert_eq!(Locale::German.format_date(date), "02.01.2022");
    }
}
