//! Number, money, percent and date formatting per customer language, for the invoice PDF
//! (pdf-render) and the email that carries it (the orchestrator), so both print a value alike.
//! The formats follow the Unicode CLDR conventions of each language (CLDR 45); the PDF's label
//! wording is in pdf-render's `labels.rs`.
//!
//! Every amount stays the decimal string the ERP sent: formatting only inserts the locale's
//! separators and never parses the value into a number, so nothing is rounded.

use chrono::{Datelike, NaiveDate};

/// A language the PDF has labels and formats for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locale {
    English,
    German,
    French,
    Spanish,
    Portuguese,
    Dutch,
}

/// Where the currency goes relative to the amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CurrencyPosition {
    /// `1.234,56 €`
    After,
    /// `€ 1.234,56`
    Before,
}

/// The separators and patterns of one locale.
struct Format {
    decimal: char,
    group: char,
    /// Digits the integer part needs before grouping starts. CLDR's `minimumGroupingDigits`
    /// plus three: Spanish writes `1234,56` but `12.345,67`.
    group_from_digits: usize,
    currency: CurrencyPosition,
    /// Whether the ISO code is printed even where a symbol exists, as in `1,234.56 EUR`.
    code_only: bool,
    /// Text between the number and the percent sign.
    percent_gap: &'static str,
    months: [&'static str; 12],
    date: DatePattern,
}

#[derive(Clone, Copy)]
enum DatePattern {
    /// `3 December 2026`
    DayMonthYear,
    /// `03.12.2026`
    Numeric,
    /// `3 de diciembre de 2026`
    DayDeMonthDeYear,
}

const NO_BREAK_SPACE: char = '\u{a0}';
const NARROW_NO_BREAK_SPACE: char = '\u{202f}';

const ENGLISH: Format = Format {
    decimal: '.',
    group: ',',
    group_from_digits: 4,
    currency: CurrencyPosition::After,
    code_only: true,
    percent_gap: "",
    months: [
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
    ],
    date: DatePattern::DayMonthYear,
};

const GERMAN: Format = Format {
    decimal: ',',
    group: '.',
    group_from_digits: 4,
    currency: CurrencyPosition::After,
    code_only: false,
    percent_gap: "\u{a0}",
    months: [""; 12],
    date: DatePattern::Numeric,
};

const FRENCH: Format = Format {
    decimal: ',',
    group: NARROW_NO_BREAK_SPACE,
    group_from_digits: 4,
    currency: CurrencyPosition::After,
    code_only: false,
    percent_gap: "\u{202f}",
    months: [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ],
    date: DatePattern::DayMonthYear,
};

const SPANISH: Format = Format {
    decimal: ',',
    group: '.',
    group_from_digits: 5,
    currency: CurrencyPosition::After,
    code_only: false,
    percent_gap: "\u{a0}",
    months: [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ],
    date: DatePattern::DayDeMonthDeYear,
};

const PORTUGUESE: Format = Format {
    decimal: ',',
    group: '.',
    group_from_digits: 4,
    currency: CurrencyPosition::Before,
    code_only: false,
    percent_gap: "",
    months: [
        "janeiro",
        "fevereiro",
        "março",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ],
    date: DatePattern::DayDeMonthDeYear,
};

const DUTCH: Format = Format {
    decimal: ',',
    group: '.',
    group_from_digits: 4,
    currency: CurrencyPosition::Before,
    code_only: false,
    percent_gap: "",
    months: [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ],
    date: DatePattern::DayMonthYear,
};

impl Locale {
    /// Every locale, in the order the documentation lists them.
    pub const ALL: [Locale; 6] = [
        Locale::English,
        Locale::German,
        Locale::French,
        Locale::Spanish,
        Locale::Portuguese,
        Locale::Dutch,
    ];

    /// Picks the locale of a BCP 47 tag by its primary language subtag (`de-AT` is German).
    /// Returns `None` for an empty tag and for languages without labels.
    pub fn from_language_tag(tag: &str) -> Option<Locale> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        Locale::ALL
            .into_iter()
            .find(|locale| primary.eq_ignore_ascii_case(locale.code()))
    }

    /// Returns the customer's locale, or `fallback` when the tag names none of ours.
    pub fn resolve(tag: &str, fallback: Locale) -> Locale {
        Locale::from_language_tag(tag).unwrap_or(fallback)
    }

    /// Returns the ISO 639-1 code, which is also the value of Typst's `text(lang)`.
    pub fn code(self) -> &'static str {
        match self {
            Locale::English => "en",
            Locale::German => "de",
            Locale::French => "fr",
            Locale::Spanish => "es",
            Locale::Portuguese => "pt",
            Locale::Dutch => "nl",
        }
    }

    fn format(self) -> &'static Format {
        match self {
            Locale::English => &ENGLISH,
            Locale::German => &GERMAN,
            Locale::French => &FRENCH,
            Locale::Spanish => &SPANISH,
            Locale::Portuguese => &PORTUGUESE,
            Locale::Dutch => &DUTCH,
        }
    }

    /// Rewrites a plain decimal string (`-1234.5`) with this locale's decimal separator and
    /// digit grouping. The digits are kept exactly, so nothing is rounded or recomputed.
    /// A value that is not a plain decimal is returned unchanged.
    pub fn format_decimal(self, value: &str) -> String {
        let value = value.trim();
        let Some((sign, integer, fraction)) = split_decimal(value) else {
            return value.to_owned();
        };

        let format = self.format();
        let mut formatted = String::with_capacity(value.len() + value.len() / 2);
        formatted.push_str(sign);
        let grouped = integer.len() >= format.group_from_digits;
        for (index, digit) in integer.chars().enumerate() {
            if grouped && index > 0 && (integer.len() - index) % 3 == 0 {
                formatted.push(format.group);
            }
            formatted.push(digit);
        }
        if let Some(fraction) = fraction {
            formatted.push(format.decimal);
            formatted.push_str(fraction);
        }
        formatted
    }

    /// Formats an amount with its currency: `1,234.56 EUR`, `1.234,56 €`, `€ 1.234,56`.
    /// English prints the ISO code; the others print the symbol of the euro and the pound and
    /// the ISO code of every other currency, which is never ambiguous.
    pub fn format_money(self, value: &str, currency: &str) -> String {
        let number = self.format_decimal(value);
        let format = self.format();
        let currency = currency.trim();
        let unit = if format.code_only {
            currency
        } else {
            currency_symbol(currency).unwrap_or(currency)
        };
        if unit.is_empty() {
            return number;
        }
        match format.currency {
            CurrencyPosition::After => format!("{number}{NO_BREAK_SPACE}{unit}"),
            CurrencyPosition::Before => format!("{unit}{NO_BREAK_SPACE}{number}"),
        }
    }

    /// Formats a percentage rate given as a decimal string (`19` becomes `19%` or `19 %`).
    pub fn format_percent(self, rate: &str) -> String {
        format!(
            "{}{}%",
            self.format_decimal(rate),
            self.format().percent_gap
        )
    }

    /// Formats a calendar date: `3 December 2026`, `03.12.2026`, `3 de diciembre de 2026`.
    pub fn format_date(self, date: NaiveDate) -> String {
        let format = self.format();
        let month = format.months[date.month0() as usize];
        match format.date {
            DatePattern::DayMonthYear => format!("{} {month} {}", date.day(), date.year()),
            DatePattern::Numeric => date.format("%d.%m.%Y").to_string(),
            DatePattern::DayDeMonthDeYear => {
                format!("{} de {month} de {}", date.day(), date.year())
            }
        }
    }
}

fn currency_symbol(code: &str) -> Option<&'static str> {
    match code {
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        _ => None,
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
mod tests;
