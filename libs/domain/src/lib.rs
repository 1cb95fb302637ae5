//! Value types shared by the invoicer services: ISO 4217 currencies, decimal amounts that
//! respect a currency's minor digits, BCP 47 language tags, the number and date formats of
//! each customer language, and the errors their parsers return.

pub mod currency;
pub mod email;
pub mod error;
pub mod language;
pub mod locale;
pub mod money;

pub use currency::Currency;
pub use error::DomainError;
pub use language::LanguageTag;
pub use locale::Locale;
pub use money::{Money, parse_decimal};
