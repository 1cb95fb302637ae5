//! Page tokens of `ListInvoicesToNotify`: the sort key of the last invoice on a page, bound
//! to the filters that produced it.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::canonical::sha256_hex;
use crate::error::QueryError;
use crate::model::InvoiceKind;

const TOKEN_VERSION: &str = "1";

/// The filters of a listing; a page token is valid only with the filters it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListFilter {
    pub(crate) issued_since: Option<DateTime<Utc>>,
    pub(crate) issued_before: Option<DateTime<Utc>>,
    /// Sorted and without repeats.
    pub(crate) kinds: Vec<InvoiceKind>,
}

impl ListFilter {
    fn fingerprint(&self) -> String {
        let instant = |t: Option<DateTime<Utc>>| t.map(format_instant).unwrap_or_default();
        let kinds: Vec<&str> = self.kinds.iter().map(|kind| kind.as_str()).collect();
        let text = format!(
            "{}|{}|{}",
            instant(self.issued_since),
            instant(self.issued_before),
            kinds.join(",")
        );
        sha256_hex(&text)[..16].to_owned()
    }
}

fn format_instant(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Encodes the position after (`issued_at_utc`, `number`) as an opaque token.
pub(crate) fn encode_token(
    filter: &ListFilter,
    issued_at_utc: DateTime<Utc>,
    number: &str,
) -> String {
    let text = format!(
        "{TOKEN_VERSION}\n{}\n{}\n{number}",
        filter.fingerprint(),
        format_instant(issued_at_utc)
    );
    hex::encode(text.as_bytes())
}

/// Decodes a token from `encode_token`, checking that it belongs to `filter`.
pub(crate) fn decode_token(
    filter: &ListFilter,
    token: &str,
) -> Result<(DateTime<Utc>, String), QueryError> {
    let invalid = |message: &str| QueryError::InvalidArgument {
        field: "page_token",
        message: format!("{message}; pass the next_page_token of the previous response unchanged"),
    };
    let bytes = hex::decode(token).map_err(|_| invalid("invalid page token"))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("invalid page token"))?;
    let mut parts = text.splitn(4, '\n');
    let (Some(version), Some(fingerprint), Some(instant), Some(number)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("invalid page token"));
    };
    if version != TOKEN_VERSION {
        return Err(invalid("invalid page token"));
    }
    if fingerprint != filter.fingerprint() {
        return Err(invalid("page token was issued for other filters"));
    }
    let instant =
        DateTime::parse_from_rfc3339(instant).map_err(|_| invalid("invalid page token"))?;
    Ok((instant.with_timezone(&Utc), number.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter() -> ListFilter {
        ListFilter {
            issued_since: Some(
                DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                    .unwrap()
                    .into(),
            ),
            issued_before: None,
            kinds: vec![InvoiceKind::Invoice],
        }
    }

    #[test]
    fn token_round_trip() {
        let instant: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-04T05:06:07.123456Z")
            .unwrap()
            .into();
        let token = encode_token(&filter(), instant, "INV-7");
        assert_eq!(
            decode_token(&filter(), &token).unwrap(),
            (instant, "INV-7".to_owned())
        );
    }

    #[test]
    fn token_rejected_for_other_filters() {
        let instant = Utc::now();
        let token = encode_token(&filter(), instant, "INV-7");
        let other = ListFilter {
            kinds: vec![InvoiceKind::CreditNote],
            ..filter()
        };
        let error = decode_token(&other, &token).unwrap_err();
        assert!(error.to_string().contains("other filters"), "{error}");
    }

    #[test]
    fn garbage_token_rejected() {
        let error = decode_token(&filter(), "not-a-token").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("page_token: invalid page token"),
            "{error}"
        );
    }
}
