//! `ListEntries` requests: the filters, the page size and the page token.
//!
//! A page token is `<sequence>.<fingerprint>`: the sequence of the last entry on the previous
//! page, and 16 hex digits of SHA-256 over the filters, so a token only continues the listing
//! it came from. Clients treat it as opaque.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::entry::address_key;
use crate::error::Error;

pub(crate) const DEFAULT_PAGE_SIZE: u64 = 100;
pub(crate) const MAX_PAGE_SIZE: u64 = 1000;

/// The request fields as the client sent them.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListRequest {
    pub(crate) invoice_number: String,
    pub(crate) customer_code: String,
    pub(crate) recipient: String,
    pub(crate) since: String,
    pub(crate) until: String,
    pub(crate) batch_id: String,
    pub(crate) page_size: u32,
    pub(crate) page_token: String,
}

/// Filter of `ListEntries`, where `None` matches every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EntryFilter {
    pub(crate) invoice_number: Option<String>,
    pub(crate) customer_code: Option<String>,
    /// Lowercased, matched against the lowercased To, Cc and Bcc addresses.
    pub(crate) recipient: Option<String>,
    /// Entries with `at` at or after this many milliseconds since the Unix epoch.
    pub(crate) since_unix_ms: Option<i64>,
    /// Entries with `at` strictly before this many milliseconds since the Unix epoch.
    pub(crate) until_unix_ms: Option<i64>,
    pub(crate) batch_id: Option<String>,
}

/// One page to read: entries matching `filter` with a sequence below `before_sequence`,
/// newest first, at most `page_size` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageQuery {
    pub(crate) filter: EntryFilter,
    pub(crate) page_size: u64,
    pub(crate) before_sequence: Option<u64>,
}

impl PageQuery {
    /// Validates the request. Errors name the request field and the value.
    pub(crate) fn parse(request: &ListRequest) -> Result<PageQuery, Error> {
        let filter = EntryFilter {
            invoice_number: non_empty(&request.invoice_number),
            customer_code: non_empty(&request.customer_code),
            recipient: non_empty(&request.recipient).map(|address| address_key(&address)),
            since_unix_ms: parse_instant("since", &request.since)?,
            until_unix_ms: parse_instant("until", &request.until)?,
            batch_id: non_empty(&request.batch_id),
        };
        if let (Some(since), Some(until)) = (filter.since_unix_ms, filter.until_unix_ms)
            && until <= since
        {
            return Err(Error::invalid(
                "until",
                format!(
                    "{:?} is not later than since {:?}: set until after since",
                    request.until, request.since
                ),
            ));
        }
        let page_size = match u64::from(request.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            size => size.min(MAX_PAGE_SIZE),
        };
        let before_sequence = parse_page_token(&request.page_token, &filter)?;
        Ok(PageQuery {
            filter,
            page_size,
            before_sequence,
        })
    }

    /// Builds the token that continues this listing after the entry with `last_sequence`.
    pub(crate) fn next_page_token(&self, last_sequence: u64) -> String {
        format!("{last_sequence}.{}", self.filter.fingerprint())
    }
}

impl EntryFilter {
    fn fingerprint(&self) -> String {
        let fields = (
            &self.invoice_number,
            &self.customer_code,
            &self.recipient,
            self.since_unix_ms,
            self.until_unix_ms,
            &self.batch_id,
        );
        // serde_json fails only on maps with non-string keys and on failing `Serialize` impls,
        // and this tuple of options of strings and integers has neither.
        let json = serde_json::to_string(&fields).unwrap_or_default();
        hex::encode(&Sha256::digest(json.as_bytes())[..8])
    }
}

fn non_empty(value: &str) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// Parses an RFC 3339 instant into Unix milliseconds, rounded up to the next whole
/// millisecond. Entry times are whole milliseconds, so rounding up keeps both "at or after
/// since" and "strictly before until" exact.
fn parse_instant(field: &str, value: &str) -> Result<Option<i64>, Error> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let instant = DateTime::parse_from_rfc3339(value).map_err(|error| {
        Error::invalid(
            field,
            format!(
                "invalid RFC 3339 time {value:?} ({error}): use a form such as 2026-12-04T02:00:00Z"
            ),
        )
    })?;
    let instant = instant.with_timezone(&Utc);
    let floor = instant.timestamp_millis();
    let has_fraction = instant.timestamp_subsec_nanos() % 1_000_000 != 0;
    Ok(Some(if has_fraction { floor + 1 } else { floor }))
}

fn parse_page_token(token: &str, filter: &EntryFilter) -> Result<Option<u64>, Error> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = |why: &str| {
        Error::invalid(
            "page_token",
            format!(
                "invalid page token {token:?}: {why}; pass the next_page_token of the previous response"
            ),
        )
    };
    let Some((sequence, fingerprint)) = token.split_once('.') else {
        return Err(invalid("malformed"));
    };
    let sequence: u64 = match sequence.parse() {
        Ok(sequence) if sequence > 0 => sequence,
        _ => return Err(invalid("malformed")),
    };
    if fingerprint != filter.fingerprint() {
        return Err(invalid("it belongs to a listing with other filters"));
    }
    Ok(Some(sequence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(request: ListRequest) -> Result<PageQuery, Error> {
        PageQuery::parse(&request)
    }

    fn invalid_field(result: Result<PageQuery, Error>) -> String {
        match result {
            Err(Error::InvalidArgument { field, message }) => format!("{field}: {message}"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn empty_request_lists_everything() {
        let query = parse(ListRequest::default()).unwrap();
        assert_eq!(query.filter, EntryFilter::default());
        assert_eq!(query.page_size, DEFAULT_PAGE_SIZE);
        assert_eq!(query.before_sequence, None);
    }

    #[test]
    fn page_size_is_capped() {
        let query = parse(ListRequest {
            page_size: 5000,
            ..ListRequest::default()
        })
        .unwrap();
        assert_eq!(query.page_size, MAX_PAGE_SIZE);
    }

    #[test]
    fn recipient_is_lowercased() {
        let request = ListRequest {
            recipient: " Maria@ALFKI.example ".into(),
            ..Default::default()
        };
        let query = parse(request).unwrap();
        assert_eq!(
            query.filter.recipient.as_deref(),
            Some("maria@alfki.example")
        );
    }

    #[test]
    fn instants_round_up_to_milliseconds() {
        let request = ListRequest {
            since: "2026-12-04T00:00:00.0001Z".into(),
            until: "2026-12-04T02:00:00+01:00".into(),
            ..Default::default()
        };
        let query = parse(request).unwrap();
        assert_eq!(query.filter.since_unix_ms, Some(1_796_342_400_001));
        assert_eq!(query.filter.until_unix_ms, Some(1_796_346_000_000));
    }

    #[test]
    fn invalid_since_names_field_and_value() {
        let message = invalid_field(parse(ListRequest {
            since: "yesterday".into(),
            ..Default::default()
        }));
        assert!(message.starts_with("since: "), "{message}");
        assert!(message.contains("\"yesterday\""), "{message}");
    }

    #[test]
    fn invalid_until_names_field_and_value() {
        let message = invalid_field(parse(ListRequest {
            until: "2026-13-01".into(),
            ..Default::default()
        }));
        assert!(message.starts_with("until: "), "{message}");
        assert!(message.contains("\"2026-13-01\""), "{message}");
    }

    #[test]
    fn until_before_since_is_rejected() {
        let request = ListRequest {
            since: "2026-12-04T00:00:00Z".into(),
            until: "2026-12-03T00:00:00Z".into(),
            ..Default::default()
        };
        assert!(invalid_field(parse(request)).starts_with("until: "));
    }

    #[test]
    fn page_token_round_trips() {
        let request = ListRequest {
            customer_code: "ALFKI".into(),
            ..Default::default()
        };
        let first = parse(request.clone()).unwrap();
        let token = first.next_page_token(42);
        let second = parse(ListRequest {
            page_token: token,
            ..request
        })
        .unwrap();
        assert_eq!(second.before_sequence, Some(42));
    }

    #[test]
    fn page_token_of_other_filter_is_rejected() {
        let token = parse(ListRequest::default()).unwrap().next_page_token(42);
        let request = ListRequest {
            customer_code: "ALFKI".into(),
            page_token: token,
            ..Default::default()
        };
        let message = invalid_field(parse(request));
        assert!(message.contains("other filters"), "{message}");
    }

    #[test]
    fn malformed_page_tokens_are_rejected() {
        let fingerprint = EntryFilter::default().fingerprint();
        for token in [
            "garbage",
            "0.abc",
            &format!("-1.{fingerprint}"),
            &format!("x.{fingerprint}"),
            "12",
        ] {
            let request = ListRequest {
                page_token: token.to_owned(),
                ..Default::default()
            };
            let message = invalid_field(parse(request));
            assert!(message.starts_with("page_token: "), "{token}: {message}");
        }
    }
}
