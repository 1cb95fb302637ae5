//! The error every parser in this crate returns.

/// A value that does not satisfy the rules of its type. Each message names the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(
        "invalid currency code {code:?}: expected an ISO 4217 code of three uppercase letters such as \"EUR\""
    )]
    InvalidCurrency { code: String },

    #[error(
        "invalid decimal {text:?}: expected digits with an optional leading minus sign and decimal point, such as \"-12.50\""
    )]
    InvalidDecimal { text: String },

    #[error("decimal {text:?} is out of range: at most 28 significant digits are supported")]
    DecimalOutOfRange { text: String },

    #[error("amount {amount:?} has {scale} decimal places but {currency} allows at most {max}")]
    TooManyMinorDigits {
        amount: String,
        currency: String,
        scale: u32,
        max: u32,
    },

    #[error(
        "invalid language tag {tag:?}: {reason}; expected a BCP 47 tag such as \"de\" or \"pt-BR\""
    )]
    InvalidLanguageTag { tag: String, reason: String },
}
