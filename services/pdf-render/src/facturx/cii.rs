//! Writes an invoice as Cross Industry Invoice XML (UN/CEFACT D16B) in the Factur-X EN 16931
//! profile. The element order follows the profile's XSD, which rejects any other order.
//!
//! Every amount is the ERP's decimal string, checked to be a plain decimal; the only computed
//! amounts are the per-rate tax bases, which EN 16931 requires and the export lacks: each is
//! the exact decimal sum of the line amounts at that rate.

use std::fmt::Write;

use invoicer_domain::parse_decimal;
use rust_decimal::Decimal;

use crate::error::RenderError;
use crate::input::{InvoiceKind, InvoiceLine, RenderInput};
use crate::settings::PaymentDetails;

/// Returns the Factur-X XML of `input`. `seller_country` is the company's ISO 3166-1 code.
pub(crate) fn invoice_xml(
    input: &RenderInput,
    seller_country: &str,
    payment: &PaymentDetails,
) -> Result<String, RenderError> {
    let invoice = &input.invoice;
    let mut xml = Xml::default();
    xml.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.raw(
        "<rsm:CrossIndustryInvoice \
         xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\" \
         xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\" \
         xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\" \
         xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">",
    );

    xml.open("rsm:ExchangedDocumentContext");
    xml.open("ram:GuidelineSpecifiedDocumentContextParameter");
    xml.element("ram:ID", "urn:cen.eu:en16931:2017");
    xml.close("ram:GuidelineSpecifiedDocumentContextParameter");
    xml.close("rsm:ExchangedDocumentContext");

    xml.open("rsm:ExchangedDocument");
    xml.element("ram:ID", invoice.number.trim());
    // UNTDID 1001: 380 commercial invoice, 381 credit note.
    let type_code = match invoice.kind {
        InvoiceKind::Invoice => "380",
        InvoiceKind::CreditNote => "381",
    };
    xml.element("ram:TypeCode", type_code);
    xml.date("ram:IssueDateTime", invoice.issued_at.date_naive());
    if !invoice.notes.trim().is_empty() {
        xml.open("ram:IncludedNote");
        xml.element("ram:Content", invoice.notes.trim());
        xml.close("ram:IncludedNote");
    }
    xml.close("rsm:ExchangedDocument");

    xml.open("rsm:SupplyChainTradeTransaction");
    let default_rate = single_tax_rate(input)?;
    let mut groups = TaxGroups::default();
    for (index, line) in invoice.lines.iter().enumerate() {
        let rate = line_rate(line, index, default_rate)?;
        let amount = amount("invoice.lines.amount", &line.amount)?;
        groups.add(rate, amount);
        write_line(&mut xml, index, line, rate)?;
    }
    write_agreement(&mut xml, input, seller_country);
    xml.empty("ram:ApplicableHeaderTradeDelivery");
    write_settlement(&mut xml, input, payment, &groups)?;
    xml.close("rsm:SupplyChainTradeTransaction");
    xml.close("rsm:CrossIndustryInvoice");
    Ok(xml.text)
}

fn write_line(
    xml: &mut Xml,
    index: usize,
    line: &InvoiceLine,
    rate: Decimal,
) -> Result<(), RenderError> {
    xml.open("ram:IncludedSupplyChainTradeLineItem");
    xml.open("ram:AssociatedDocumentLineDocument");
    xml.element("ram:LineID", &(index + 1).to_string());
    xml.close("ram:AssociatedDocumentLineDocument");

    xml.open("ram:SpecifiedTradeProduct");
    if !line.sku.trim().is_empty() {
        xml.element("ram:SellerAssignedID", line.sku.trim());
    }
    xml.element("ram:Name", line.description.trim());
    xml.close("ram:SpecifiedTradeProduct");

    xml.open("ram:SpecifiedLineTradeAgreement");
    xml.open("ram:NetPriceProductTradePrice");
    xml.element(
        "ram:ChargeAmount",
        &amount("invoice.lines.unit_price", &line.unit_price)?.to_string(),
    );
    xml.close("ram:NetPriceProductTradePrice");
    xml.close("ram:SpecifiedLineTradeAgreement");

    xml.open("ram:SpecifiedLineTradeDelivery");
    let quantity = amount("invoice.lines.quantity", &line.quantity)?;
    xml.element_with(
        "ram:BilledQuantity",
        &[("unitCode", unit_code(&line.unit))],
        &quantity.to_string(),
    );
    xml.close("ram:SpecifiedLineTradeDelivery");

    xml.open("ram:SpecifiedLineTradeSettlement");
    write_tax_category(xml, rate, None, None);
    xml.open("ram:SpecifiedTradeSettlementLineMonetarySummation");
    xml.element(
        "ram:LineTotalAmount",
        &amount("invoice.lines.amount", &line.amount)?.to_string(),
    );
    xml.close("ram:SpecifiedTradeSettlementLineMonetarySummation");
    xml.close("ram:SpecifiedLineTradeSettlement");
    xml.close("ram:IncludedSupplyChainTradeLineItem");
    Ok(())
}

fn write_agreement(xml: &mut Xml, input: &RenderInput, seller_country: &str) {
    let invoice = &input.invoice;
    let seller = &input.seller;
    let customer = &input.customer;
    xml.open("ram:ApplicableHeaderTradeAgreement");

    xml.open("ram:SellerTradeParty");
    xml.element("ram:Name", seller.name.trim());
    write_address(xml, &seller.address, seller_country);
    if !seller.email.trim().is_empty() {
        xml.open("ram:URIUniversalCommunication");
        xml.element_with("ram:URIID", &[("schemeID", "EM")], seller.email.trim());
        xml.close("ram:URIUniversalCommunication");
    }
    write_tax_registration(xml, &seller.tax_id);
    xml.close("ram:SellerTradeParty");

    xml.open("ram:BuyerTradeParty");
    if !customer.code.trim().is_empty() {
        xml.element("ram:ID", customer.code.trim());
    }
    xml.element("ram:Name", customer.name.trim());
    let buyer_country = buyer_country(&customer.tax_id, &customer.language, seller_country);
    write_address(xml, &customer.address, &buyer_country);
    write_tax_registration(xml, &customer.tax_id);
    xml.close("ram:BuyerTradeParty");

    if !invoice.order_number.trim().is_empty() {
        xml.open("ram:SellerOrderReferencedDocument");
        xml.element("ram:IssuerAssignedID", invoice.order_number.trim());
        xml.close("ram:SellerOrderReferencedDocument");
    }
    if !invoice.po_number.trim().is_empty() {
        xml.open("ram:BuyerOrderReferencedDocument");
        xml.element("ram:IssuerAssignedID", invoice.po_number.trim());
        xml.close("ram:BuyerOrderReferencedDocument");
    }
    xml.close("ram:ApplicableHeaderTradeAgreement");
}

fn write_settlement(
    xml: &mut Xml,
    input: &RenderInput,
    payment: &PaymentDetails,
    groups: &TaxGroups,
) -> Result<(), RenderError> {
    let invoice = &input.invoice;
    let currency = invoice.currency.trim();
    xml.open("ram:ApplicableHeaderTradeSettlement");
    xml.element("ram:PaymentReference", invoice.number.trim());
    xml.element("ram:InvoiceCurrencyCode", currency);
    if !payment.iban.trim().is_empty() {
        xml.open("ram:SpecifiedTradeSettlementPaymentMeans");
        // UNTDID 4461: 58 is a SEPA credit transfer, 30 any other credit transfer.
        let sepa = payment.iban.trim().get(..2).is_some_and(is_sepa_country);
        xml.element("ram:TypeCode", if sepa { "58" } else { "30" });
        xml.open("ram:PayeePartyCreditorFinancialAccount");
        xml.element("ram:IBANID", &payment.iban.replace(' ', ""));
        if !payment.account_holder.trim().is_empty() {
            xml.element("ram:AccountName", payment.account_holder.trim());
        }
        xml.close("ram:PayeePartyCreditorFinancialAccount");
        if !payment.bic.trim().is_empty() {
            xml.open("ram:PayeeSpecifiedCreditorFinancialInstitution");
            xml.element("ram:BICID", payment.bic.trim());
            xml.close("ram:PayeeSpecifiedCreditorFinancialInstitution");
        }
        xml.close("ram:SpecifiedTradeSettlementPaymentMeans");
    }

    let mut tax_total = Decimal::ZERO;
    let mut tax_amounts = Vec::with_capacity(invoice.taxes.len());
    for tax in &invoice.taxes {
        let value = amount("invoice.taxes.amount", &tax.amount)?;
        tax_total += value;
        let rate = match tax.rate.trim() {
            "" => None,
            rate => Some(amount("invoice.taxes.rate", rate)?),
        };
        tax_amounts.push((rate, value));
    }
    for (rate, basis) in &groups.groups {
        let matching: Decimal = tax_amounts
            .iter()
            .filter(|(tax_rate, _)| tax_rate.is_some_and(|tax_rate| tax_rate == *rate))
            .map(|(_, value)| *value)
            .sum();
        // NOTE: taxes without a rate cannot be matched to a rate group; with one group they
        // all belong to it, with several they stay out of the per-rate amounts.
        let calculated = if groups.groups.len() == 1 && matching.is_zero() {
            tax_total
        } else {
            matching
        };
        write_tax_category(xml, *rate, Some(calculated), Some(*basis));
    }

    xml.open("ram:SpecifiedTradePaymentTerms");
    if !invoice.terms.trim().is_empty() {
        xml.element("ram:Description", invoice.terms.trim());
    }
    if let Some(due_date) = invoice.due_date {
        xml.date("ram:DueDateDateTime", due_date);
    }
    xml.close("ram:SpecifiedTradePaymentTerms");

    let subtotal = amount("invoice.subtotal", &invoice.subtotal)?.to_string();
    let total = amount("invoice.total", &invoice.total)?.to_string();
    xml.open("ram:SpecifiedTradeSettlementHeaderMonetarySummation");
    xml.element("ram:LineTotalAmount", &subtotal);
    xml.element("ram:TaxBasisTotalAmount", &subtotal);
    xml.element_with(
        "ram:TaxTotalAmount",
        &[("currencyID", currency)],
        &tax_total.to_string(),
    );
    xml.element("ram:GrandTotalAmount", &total);
    xml.element("ram:DuePayableAmount", &total);
    xml.close("ram:SpecifiedTradeSettlementHeaderMonetarySummation");
    xml.close("ram:ApplicableHeaderTradeSettlement");
    Ok(())
}

/// Writes one `ApplicableTradeTax`: VAT at `rate`, category `S` (standard) or `Z` (zero).
fn write_tax_category(
    xml: &mut Xml,
    rate: Decimal,
    calculated: Option<Decimal>,
    basis: Option<Decimal>,
) {
    xml.open("ram:ApplicableTradeTax");
    if let Some(calculated) = calculated {
        xml.element("ram:CalculatedAmount", &calculated.to_string());
    }
    xml.element("ram:TypeCode", "VAT");
    if let Some(basis) = basis {
        xml.element("ram:BasisAmount", &basis.to_string());
    }
    xml.element("ram:CategoryCode", if rate.is_zero() { "Z" } else { "S" });
    xml.element("ram:RateApplicablePercent", &rate.normalize().to_string());
    xml.close("ram:ApplicableTradeTax");
}

fn write_address(xml: &mut Xml, lines: &[String], country: &str) {
    let lines: Vec<&str> = lines
        .iter()
        .map(|line| line.trim())
        .filter(|line| !line.is_empty())
        .collect();
    xml.open("ram:PostalTradeAddress");
    for (element, line) in ["ram:LineOne", "ram:LineTwo"].iter().zip(&lines) {
        xml.element(element, line);
    }
    if lines.len() > 2 {
        xml.element("ram:LineThree", &lines[2..].join(", "));
    }
    xml.element("ram:CountryID", country);
    xml.close("ram:PostalTradeAddress");
}

fn write_tax_registration(xml: &mut Xml, tax_id: &str) {
    let tax_id = tax_id.trim();
    if tax_id.is_empty() {
        return;
    }
    xml.open("ram:SpecifiedTaxRegistration");
    // `VA` marks a VAT identifier; a number without a country prefix is a local tax number.
    let scheme = if has_country_prefix(tax_id) {
        "VA"
    } else {
        "FC"
    };
    xml.element_with("ram:ID", &[("schemeID", scheme)], tax_id);
    xml.close("ram:SpecifiedTaxRegistration");
}

/// Picks the buyer's ISO 3166-1 country, which the export does not carry: the prefix of a
/// VAT identifier (`DE123456789`), else the region of the language tag (`de-AT`), else the
/// seller's country.
fn buyer_country(tax_id: &str, language: &str, seller_country: &str) -> String {
    let tax_id = tax_id.trim();
    if has_country_prefix(tax_id) {
        // Greece's VAT identifiers start with EL, its ISO code is GR.
        let prefix = tax_id[..2].to_ascii_uppercase();
        return if prefix == "EL" { "GR".into() } else { prefix };
    }
    let region = language
        .split(['-', '_'])
        .skip(1)
        .find(|part| part.len() == 2 && part.bytes().all(|b| b.is_ascii_alphabetic()));
    match region {
        Some(region) => region.to_ascii_uppercase(),
        None => seller_country.to_owned(),
    }
}

fn has_country_prefix(tax_id: &str) -> bool {
    let bytes = tax_id.as_bytes();
    bytes.len() > 2 && bytes[..2].iter().all(u8::is_ascii_alphabetic)
}

fn is_sepa_country(prefix: &str) -> bool {
    const SEPA: &[&str] = &[
        "AD", "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GI",
        "GR", "HR", "HU", "IE", "IS", "IT", "LI", "LT", "LU", "LV", "MC", "MT", "NL", "NO", "PL",
        "PT", "RO", "SE", "SI", "SK", "SM", "VA",
    ];
    SEPA.contains(&prefix.to_ascii_uppercase().as_str())
}

/// Maps the ERP's free-text unit to a UN/ECE Recommendation 20 code; `C62` (one) when the
/// unit is empty or unknown. A three-letter upper-case unit is taken as a code already.
fn unit_code(unit: &str) -> &str {
    let unit = unit.trim();
    if unit.len() == 3
        && unit
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return unit;
    }
    match unit.to_lowercase().trim_end_matches('.') {
        "pc" | "pcs" | "piece" | "pieces" | "stk" | "stück" | "st" => "H87",
        "h" | "hr" | "hrs" | "hour" | "hours" | "std" | "stunde" | "stunden" => "HUR",
        "min" | "minute" | "minutes" => "MIN",
        "d" | "day" | "days" | "tag" | "tage" => "DAY",
        "month" | "months" | "monat" | "monate" => "MON",
        "year" | "years" | "jahr" | "jahre" => "ANN",
        "kg" => "KGM",
        "g" => "GRM",
        "t" => "TNE",
        "m" => "MTR",
        "km" => "KMT",
        "l" | "liter" | "litre" => "LTR",
        "m2" | "m²" => "MTK",
        "m3" | "m³" => "MTQ",
        "kwh" => "KWH",
        _ => "C62",
    }
}

/// Returns the rate of the invoice's only tax, the rate of lines that name none.
fn single_tax_rate(input: &RenderInput) -> Result<Option<Decimal>, RenderError> {
    match input.invoice.taxes.as_slice() {
        [tax] if !tax.rate.trim().is_empty() => Ok(Some(amount("invoice.taxes.rate", &tax.rate)?)),
        _ => Ok(None),
    }
}

fn line_rate(
    line: &InvoiceLine,
    index: usize,
    default_rate: Option<Decimal>,
) -> Result<Decimal, RenderError> {
    match line.tax_rate.trim() {
        "" => default_rate.ok_or_else(|| RenderError::InvalidInput {
            field: "invoice.lines.tax_rate",
            message: format!(
                "line {} has no tax rate, which Factur-X requires; send the rate (0 for none)",
                index + 1
            ),
        }),
        rate => amount("invoice.lines.tax_rate", rate),
    }
}

fn amount(field: &'static str, text: &str) -> Result<Decimal, RenderError> {
    parse_decimal(text.trim()).map_err(|error| RenderError::InvalidInput {
        field,
        message: format!("{error}; Factur-X needs a plain decimal such as 12.50"),
    })
}

/// The line amounts summed per tax rate, in the order the rates first appear.
#[derive(Default)]
struct TaxGroups {
    groups: Vec<(Decimal, Decimal)>,
}

impl TaxGroups {
    fn add(&mut self, rate: Decimal, amount: Decimal) {
        match self.groups.iter_mut().find(|(known, _)| *known == rate) {
            Some((_, basis)) => *basis += amount,
            None => self.groups.push((rate, amount)),
        }
    }
}

/// A minimal XML writer: elements, attributes and escaped text.
#[derive(Default)]
struct Xml {
    text: String,
}

impl Xml {
    fn raw(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn open(&mut self, name: &str) {
        let _ = write!(self.text, "<{name}>");
    }

    fn close(&mut self, name: &str) {
        let _ = write!(self.text, "</{name}>");
    }

    fn empty(&mut self, name: &str) {
        let _ = write!(self.text, "<{name}/>");
    }

    fn element(&mut self, name: &str, value: &str) {
        self.element_with(name, &[], value);
    }

    fn element_with(&mut self, name: &str, attributes: &[(&str, &str)], value: &str) {
        let _ = write!(self.text, "<{name}");
        for (attribute, attribute_value) in attributes {
            let _ = write!(self.text, " {attribute}=\"");
            escape_into(&mut self.text, attribute_value);
            self.text.push('"');
        }
        self.text.push('>');
        escape_into(&mut self.text, value);
        self.close(name);
    }

    fn date(&mut self, name: &str, date: chrono::NaiveDate) {
        self.open(name);
        self.element_with(
            "udt:DateTimeString",
            &[("format", "102")],
            &date.format("%Y%m%d").to_string(),
        );
        self.close(name);
    }
}

/// Escapes XML's special characters and drops the control characters XML 1.0 forbids.
fn escape_into(out: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(character),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    fn xml() -> String {
        invoice_xml(&sample::invoice(), "DE", &PaymentDetails::default()).unwrap()
    }

    #[test]
    fn xml_names_en16931_profile() {
        assert!(xml().contains("<ram:ID>urn:cen.eu:en16931:2017</ram:ID>"));
    }

    #[test]
    fn xml_keeps_erp_amounts() {
        let xml = xml();
        assert!(
            xml.contains("<ram:GrandTotalAmount>59.50</ram:GrandTotalAmount>"),
            "{xml}"
        );
        assert!(
            xml.contains("<ram:BasisAmount>50.00</ram:BasisAmount>"),
            "{xml}"
        );
        assert!(
            xml.contains("<ram:CalculatedAmount>9.50</ram:CalculatedAmount>"),
            "{xml}"
        );
    }

    #[test]
    fn xml_escapes_text() {
        let mut input = sample::invoice();
        input.customer.name = "A & B <C> \"D\"".into();
        let xml = invoice_xml(&input, "DE", &PaymentDetails::default()).unwrap();
        assert!(
            xml.contains("<ram:Name>A &amp; B &lt;C&gt; &quot;D&quot;</ram:Name>"),
            "{xml}"
        );
    }

    #[test]
    fn xml_rejects_line_without_rate_among_several_taxes() {
        let mut input = sample::invoice();
        input.invoice.lines[0].tax_rate.clear();
        input.invoice.taxes.push(input.invoice.taxes[0].clone());
        let error = invoice_xml(&input, "DE", &PaymentDetails::default()).unwrap_err();
        assert!(
            error.to_string().contains("line 1 has no tax rate"),
            "{error}"
        );
    }

    #[test]
    fn buyer_country_from_vat_prefix_region_or_seller() {
        assert_eq!(buyer_country("ATU12345678", "", "DE"), "AT");
        assert_eq!(buyer_country("EL123456789", "", "DE"), "GR");
        assert_eq!(buyer_country("", "fr-BE", "DE"), "BE");
        assert_eq!(buyer_country("12345", "fr", "DE"), "DE");
    }

    #[test]
    fn unit_codes_follow_recommendation_20() {
        for (unit, code) in [
            ("pcs", "H87"),
            ("h", "HUR"),
            ("Std.", "HUR"),
            ("", "C62"),
            ("boxes", "C62"),
            ("KGM", "KGM"),
        ] {
            assert_eq!(unit_code(unit), code, "unit {unit:?}");
        }
    }
}
