//! The company-wide settings of the renderer, read once at start-up from the `[pdf]` and
//! `[company]` sections of the configuration.

use std::path::PathBuf;

use invoicer_kit::Config;

/// Render settings shared by every invoice of this installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSettings {
    /// BCP 47 tag whose locale applies to customers whose language has no labels.
    pub default_language: String,
    /// Typst file that replaces the built-in template; `None` uses the built-in one.
    pub template: Option<PathBuf>,
    /// PNG, JPEG or SVG image printed above the seller's name.
    pub logo: Option<PathBuf>,
    /// Writes PDF/A-3b with the invoice embedded as Factur-X (EN 16931) XML.
    pub factur_x: bool,
    /// ISO 3166-1 alpha-2 code of the seller's country, for the Factur-X XML.
    pub seller_country: String,
    pub payment: PaymentDetails,
}

/// The bank account printed as payment instructions on invoices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentDetails {
    pub account_holder: String,
    pub bank_name: String,
    pub iban: String,
    pub bic: String,
    /// Free text printed below the bank details.
    pub instructions: String,
}

impl PaymentDetails {
    /// Returns whether nothing is configured, in which case no payment block is printed.
    pub fn is_empty(&self) -> bool {
        [
            &self.account_holder,
            &self.bank_name,
            &self.iban,
            &self.bic,
            &self.instructions,
        ]
        .iter()
        .all(|value| value.trim().is_empty())
    }
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            default_language: "en".to_owned(),
            template: None,
            logo: None,
            factur_x: false,
            seller_country: String::new(),
            payment: PaymentDetails::default(),
        }
    }
}

impl RenderSettings {
    pub fn from_config(config: &Config) -> RenderSettings {
        let payment = &config.pdf.payment;
        RenderSettings {
            default_language: config.company.language.clone(),
            template: config.pdf.template.clone(),
            logo: config.pdf.logo.clone(),
            factur_x: config.pdf.factur_x,
            seller_country: config.company.country.clone(),
            payment: PaymentDetails {
                account_holder: payment.account_holder.clone(),
                bank_name: payment.bank_name.clone(),
                iban: payment.iban.clone(),
                bic: payment.bic.clone(),
                instructions: payment.instructions.clone(),
            },
        }
    }
}
