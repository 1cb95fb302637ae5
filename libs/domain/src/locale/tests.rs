use super::*;

const NBSP: &str = "\u{a0}";
const NNBSP: &str = "\u{202f}";

#[test]
fn language_tag_picks_locale() {
    let cases = [
        ("de", Some(Locale::German)),
        ("de-AT", Some(Locale::German)),
        ("DE_ch", Some(Locale::German)),
        ("en-US", Some(Locale::English)),
        ("fr-CA", Some(Locale::French)),
        ("es-MX", Some(Locale::Spanish)),
        ("pt-BR", Some(Locale::Portuguese)),
        ("nl-BE", Some(Locale::Dutch)),
        ("sv", None),
        ("", None),
        ("  ", None),
        ("deu", None),
    ];
    for (tag, expected) in cases {
        assert_eq!(Locale::from_language_tag(tag), expected, "tag {tag:?}");
    }
}

#[test]
fn resolve_falls_back_to_company_locale() {
    assert_eq!(Locale::resolve("sv-SE", Locale::Dutch), Locale::Dutch);
    assert_eq!(Locale::resolve("", Locale::French), Locale::French);
    assert_eq!(Locale::resolve("es", Locale::French), Locale::Spanish);
}

#[test]
fn decimal_formats_per_locale() {
    // input, en, de, fr, es, pt, nl
    let cases = [
        ("0.99", "0.99", "0,99", "0,99", "0,99", "0,99", "0,99"),
        ("1", "1", "1", "1", "1", "1", "1"),
        (
            "999.00", "999.00", "999,00", "999,00", "999,00", "999,00", "999,00",
        ),
        (
            "1234.50",
            "1,234.50",
            "1.234,50",
            "1\u{202f}234,50",
            "1234,50",
            "1.234,50",
            "1.234,50",
        ),
        (
            "12345.67",
            "12,345.67",
            "12.345,67",
            "12\u{202f}345,67",
            "12.345,67",
            "12.345,67",
            "12.345,67",
        ),
        (
            "-1234567.891",
            "-1,234,567.891",
            "-1.234.567,891",
            "-1\u{202f}234\u{202f}567,891",
            "-1.234.567,891",
            "-1.234.567,891",
            "-1.234.567,891",
        ),
        (
            " 42.10 ", "42.10", "42,10", "42,10", "42,10", "42,10", "42,10",
        ),
    ];
    for (input, en, de, fr, es, pt, nl) in cases {
        for (locale, expected) in [
            (Locale::English, en),
            (Locale::German, de),
            (Locale::French, fr),
            (Locale::Spanish, es),
            (Locale::Portuguese, pt),
            (Locale::Dutch, nl),
        ] {
            assert_eq!(
                locale.format_decimal(input),
                expected,
                "input {input:?} in {locale:?}"
            );
        }
    }
}

#[test]
fn decimal_keeps_unparsable_values() {
    for input in [
        "", "-", "1.", ".5", "1.2.3", "1,5", "12a", "1e3", "--1", "½",
    ] {
        for locale in Locale::ALL {
            assert_eq!(
                locale.format_decimal(input),
                input.trim(),
                "input {input:?} in {locale:?}"
            );
        }
    }
}

#[test]
fn decimal_keeps_every_digit() {
    let many = "123456789012345678901234567890.123456789012345678901234567890";
    let formatted = Locale::German.format_decimal(many);
    let digits: String = formatted.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(digits, many.replace('.', ""));
}

#[test]
fn money_formats_per_locale() {
    let cases = [
        (Locale::English, "EUR", format!("1,234.56{NBSP}EUR")),
        (Locale::English, "USD", format!("1,234.56{NBSP}USD")),
        (Locale::German, "EUR", format!("1.234,56{NBSP}€")),
        (Locale::German, "USD", format!("1.234,56{NBSP}USD")),
        (Locale::French, "EUR", format!("1{NNBSP}234,56{NBSP}€")),
        (Locale::Spanish, "EUR", format!("1234,56{NBSP}€")),
        (Locale::Portuguese, "EUR", format!("€{NBSP}1.234,56")),
        (Locale::Dutch, "GBP", format!("£{NBSP}1.234,56")),
        (Locale::Dutch, "", "1.234,56".to_owned()),
    ];
    for (locale, currency, expected) in cases {
        assert_eq!(
            locale.format_money("1234.56", currency),
            expected,
            "{currency} in {locale:?}"
        );
    }
}

#[test]
fn percent_formats_per_locale() {
    let cases = [
        (Locale::English, "19%".to_owned()),
        (Locale::German, format!("7,5{NBSP}%")),
        (Locale::French, format!("7,5{NNBSP}%")),
        (Locale::Spanish, format!("7,5{NBSP}%")),
        (Locale::Portuguese, "7,5%".to_owned()),
        (Locale::Dutch, "7,5%".to_owned()),
    ];
    for (locale, expected) in cases {
        let rate = if locale == Locale::English {
            "19"
        } else {
            "7.5"
        };
        assert_eq!(locale.format_percent(rate), expected, "{locale:?}");
    }
}

#[test]
fn date_formats_per_locale() {
    let date = NaiveDate::from_ymd_opt(2022, 1, 2).unwrap();
    let cases = [
        (Locale::English, "2 January 2022"),
        (Locale::German, "02.01.2022"),
        (Locale::French, "2 janvier 2022"),
        (Locale::Spanish, "2 de enero de 2022"),
        (Locale::Portuguese, "2 de janeiro de 2022"),
        (Locale::Dutch, "2 januari 2022"),
    ];
    for (locale, expected) in cases {
        assert_eq!(locale.format_date(date), expected, "{locale:?}");
    }
}
