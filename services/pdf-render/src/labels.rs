//! The wording of every label on the invoice, per locale and document kind. The renderer puts
//! the chosen set into `/data.json` as `labels`, so custom templates get the same wording.

use serde::Serialize;

use crate::input::InvoiceKind;
use invoicer_domain::Locale;

/// Every label a template prints, already chosen for the locale and the document kind.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Labels {
    pub(crate) title: &'static str,
    pub(crate) number: &'static str,
    pub(crate) issue_date: &'static str,
    pub(crate) due_date: &'static str,
    pub(crate) order_number: &'static str,
    pub(crate) po_number: &'static str,
    pub(crate) terms: &'static str,
    pub(crate) customer_number: &'static str,
    pub(crate) currency: &'static str,
    pub(crate) bill_to: &'static str,
    pub(crate) tax_id: &'static str,
    pub(crate) email: &'static str,
    pub(crate) phone: &'static str,
    pub(crate) website: &'static str,
    pub(crate) sku: &'static str,
    pub(crate) description: &'static str,
    pub(crate) quantity: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) unit_price: &'static str,
    pub(crate) tax_rate: &'static str,
    pub(crate) amount: &'static str,
    pub(crate) subtotal: &'static str,
    pub(crate) tax: &'static str,
    pub(crate) total: &'static str,
    pub(crate) amount_due: &'static str,
    pub(crate) payment: &'static str,
    pub(crate) account_holder: &'static str,
    pub(crate) bank_name: &'static str,
    pub(crate) iban: &'static str,
    pub(crate) bic: &'static str,
    pub(crate) reference: &'static str,
    pub(crate) notes: &'static str,
    pub(crate) page: &'static str,
    pub(crate) of: &'static str,
}

/// The labels that differ between an invoice and a credit note.
struct KindLabels {
    title: &'static str,
    number: &'static str,
    issue_date: &'static str,
    amount_due: &'static str,
}

struct Wording {
    invoice: KindLabels,
    credit_note: KindLabels,
    /// The shared labels; its kind-specific fields are overwritten from the two above.
    common: Labels,
}

impl Labels {
    pub(crate) fn for_document(locale: Locale, kind: InvoiceKind) -> Labels {
        let wording = wording(locale);
        let kind_labels = match kind {
            InvoiceKind::Invoice => &wording.invoice,
            InvoiceKind::CreditNote => &wording.credit_note,
        };
        Labels {
            title: kind_labels.title,
            number: kind_labels.number,
            issue_date: kind_labels.issue_date,
            amount_due: kind_labels.amount_due,
            ..wording.common
        }
    }
}

fn wording(locale: Locale) -> &'static Wording {
    match locale {
        Locale::English => &ENGLISH,
        Locale::German => &GERMAN,
        Locale::French => &FRENCH,
        Locale::Spanish => &SPANISH,
        Locale::Portuguese => &PORTUGUESE,
        Locale::Dutch => &DUTCH,
    }
}

const ENGLISH: Wording = Wording {
    invoice: KindLabels {
        title: "Invoice",
        number: "Invoice number",
        issue_date: "Invoice date",
        amount_due: "Amount due",
    },
    credit_note: KindLabels {
        title: "Credit note",
        number: "Credit note number",
        issue_date: "Credit note date",
        amount_due: "Amount credited",
    },
    common: Labels {
        title: "",
        number: "",
        issue_date: "",
        due_date: "Due date",
        order_number: "Order number",
        po_number: "PO number",
        terms: "Terms",
        customer_number: "Customer number",
        currency: "Currency",
        bill_to: "Bill to",
        tax_id: "Tax ID",
        email: "Email",
        phone: "Phone",
        website: "Web",
        sku: "SKU",
        description: "Description",
        quantity: "Qty",
        unit: "Unit",
        unit_price: "Unit price",
        tax_rate: "Tax",
        amount: "Amount",
        subtotal: "Subtotal",
        tax: "Tax",
        total: "Total",
        amount_due: "",
        payment: "Payment details",
        account_holder: "Account holder",
        bank_name: "Bank",
        iban: "IBAN",
        bic: "BIC",
        reference: "Reference",
        notes: "Notes",
        page: "Page",
        of: "of",
    },
};

const GERMAN: Wording = Wording {
    invoice: KindLabels {
        title: "Rechnung",
        number: "Rechnungsnummer",
        issue_date: "Rechnungsdatum",
        amount_due: "Zahlbetrag",
    },
    credit_note: KindLabels {
        title: "Gutschrift",
        number: "Gutschriftsnummer",
        issue_date: "Gutschriftsdatum",
        amount_due: "Gutschriftsbetrag",
    },
    common: Labels {
        title: "",
        number: "",
        issue_date: "",
        due_date: "Fällig am",
        order_number: "Auftragsnummer",
        po_number: "Bestellnummer",
        terms: "Zahlungsbedingungen",
        customer_number: "Kundennummer",
        currency: "Währung",
        bill_to: "Rechnungsempfänger",
        tax_id: "USt-IdNr.",
        email: "E-Mail",
        phone: "Telefon",
        website: "Web",
        sku: "Art.-Nr.",
        description: "Beschreibung",
        quantity: "Menge",
        unit: "Einheit",
        unit_price: "Einzelpreis",
        tax_rate: "USt.",
        amount: "Betrag",
        subtotal: "Zwischensumme",
        tax: "USt.",
        total: "Gesamtbetrag",
        amount_due: "",
        payment: "Zahlungsinformationen",
        account_holder: "Kontoinhaber",
        bank_name: "Bank",
        iban: "IBAN",
        bic: "BIC",
        reference: "Verwendungszweck",
        notes: "Hinweise",
        page: "Seite",
        of: "von",
    },
};

const FRENCH: Wording = Wording {
    invoice: KindLabels {
        title: "Facture",
        number: "Numéro de facture",
        issue_date: "Date de facture",
        amount_due: "Montant dû",
    },
    credit_note: KindLabels {
        title: "Avoir",
        number: "Numéro d’avoir",
        issue_date: "Date de l’avoir",
        amount_due: "Montant de l’avoir",
    },
    common: Labels {
        title: "",
        number: "",
        issue_date: "",
        due_date: "Date d’échéance",
        order_number: "Numéro de commande",
        po_number: "Bon de commande",
        terms: "Conditions de paiement",
        customer_number: "Numéro client",
        currency: "Devise",
        bill_to: "Facturé à",
        tax_id: "N° TVA",
        email: "E-mail",
        phone: "Téléphone",
        website: "Site web",
        sku: "Réf.",
        description: "Désignation",
        quantity: "Qté",
        unit: "Unité",
        unit_price: "Prix unitaire",
        tax_rate: "TVA",
        amount: "Montant",
        subtotal: "Sous-total",
        tax: "TVA",
        total: "Total",
        amount_due: "",
        payment: "Coordonnées bancaires",
        account_holder: "Titulaire du compte",
        bank_name: "Banque",
        iban: "IBAN",
        bic: "BIC",
        reference: "Référence",
        notes: "Remarques",
        page: "Page",
        of: "sur",
    },
};

const SPANISH: Wording = Wording {
    invoice: KindLabels {
        title: "Factura",
        number: "Número de factura",
        issue_date: "Fecha de factura",
        amount_due: "Importe a pagar",
    },
    credit_note: KindLabels {
        title: "Nota de crédito",
        number: "Número de nota de crédito",
        issue_date: "Fecha de la nota de crédito",
        amount_due: "Importe abonado",
    },
    common: Labels {
        title: "",
        number: "",
        issue_date: "",
        due_date: "Fecha de vencimiento",
        order_number: "Número de pedido",
        po_number: "Orden de compra",
        terms: "Condiciones de pago",
        customer_number: "Número de cliente",
        currency: "Moneda",
        bill_to: "Facturar a",
        tax_id: "NIF-IVA",
        email: "Correo electrónico",
        phone: "Teléfono",
        website: "Web",
        sku: "Ref.",
        description: "Descripción",
        quantity: "Cant.",
        unit: "Unidad",
        unit_price: "Precio unitario",
        tax_rate: "IVA",
        amount: "Importe",
        subtotal: "Subtotal",
        tax: "IVA",
        total: "Total",
        amount_due: "",
        payment: "Datos de pago",
        account_holder: "Titular de la cuenta",
        bank_name: "Banco",
        iban: "IBAN",
        bic: "BIC",
        reference: "Referencia",
        notes: "Notas",
        page: "Página",
        of: "de",
    },
};

const PORTUGUESE: Wording = Wording {
    invoice: KindLabels {
        title: "Fatura",
        number: "Número da fatura",
        issue_date: "Data da fatura",
        amount_due: "Valor a pagar",
    },
    credit_note: KindLabels {
        title: "Nota de crédito",
        number: "Número da nota de crédito",
        issue_date: "Data da nota de crédito",
        amount_due: "Valor creditado",
    },
    common: Labels {
        title: "",
        number: "",
        issue_date: "",
        due_date: "Data de vencimento",
        order_number: "Número do pedido",
        po_number: "Ordem de compra",
        terms: "Condições de pagamento",
        customer_number: "Número de cliente",
        currency: "Moeda",
        bill_to: "Faturar a",
        tax_id: "NIF",
        email: "E-mail",
        phone: "Telefone",
        website: "Web",
        sku: "Ref.",
        description: "Descrição",
        quantity: "Qtd.",
        unit: "Unidade",
        unit_price: "Preço unitário",
        tax_rate: "Imposto",
        amount: "Valor",
        subtotal: "Subtotal",
        tax: "Imposto",
        total: "Total",
        amount_due: "",
        payment: "Dados de pagamento",
        account_holder: "Titular da conta",
        bank_name: "Banco",
        iban: "IBAN",
        bic: "BIC",
        reference: "Referência",
        notes: "Observações",
        page: "Página",
        of: "de",
    },
};

const DUTCH: Wording = Wording {
    invoice: KindLabels {
        title: "Factuur",
        number: "Factuurnummer",
        issue_date: "Factuurdatum",
        amount_due: "Te betalen",
    },
    credit_note: KindLabels {
        title: "Creditnota",
        number: "Creditnotanummer",
        issue_date: "Creditnotadatum",
        amount_due: "Gecrediteerd bedrag",
    },
    common: Labels {
        title: "",
        number: "",
        issue_date: "",
        due_date: "Vervaldatum",
        order_number: "Ordernummer",
        po_number: "Inkoopordernummer",
        terms: "Betalingsvoorwaarden",
        customer_number: "Klantnummer",
        currency: "Valuta",
        bill_to: "Factuuradres",
        tax_id: "Btw-nummer",
        email: "E-mail",
        phone: "Telefoon",
        website: "Website",
        sku: "Artikelnr.",
        description: "Omschrijving",
        quantity: "Aantal",
        unit: "Eenheid",
        unit_price: "Stukprijs",
        tax_rate: "Btw",
        amount: "Bedrag",
        subtotal: "Subtotaal",
        tax: "Btw",
        total: "Totaal",
        amount_due: "",
        payment: "Betaalgegevens",
        account_holder: "Rekeninghouder",
        bank_name: "Bank",
        iban: "IBAN",
        bic: "BIC",
        reference: "Kenmerk",
        notes: "Opmerkingen",
        page: "Pagina",
        of: "van",
    },
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_is_worded_in_every_locale() {
        for locale in Locale::ALL {
            for kind in [InvoiceKind::Invoice, InvoiceKind::CreditNote] {
                let labels = Labels::for_document(locale, kind);
                let json = serde_json::to_value(labels).unwrap();
                for (name, value) in json.as_object().unwrap() {
                    assert_ne!(value, "", "label {name} is empty in {locale:?} {kind:?}");
                }
            }
        }
    }

    #[test]
    fn credit_note_title_differs_from_invoice_title() {
        for locale in Locale::ALL {
            let invoice = Labels::for_document(locale, InvoiceKind::Invoice);
            let credit_note = Labels::for_document(locale, InvoiceKind::CreditNote);
            assert_ne!(invoice.title, credit_note.title, "{locale:?}");
            assert_ne!(invoice.amount_due, credit_note.amount_due, "{locale:?}");
        }
    }
}
