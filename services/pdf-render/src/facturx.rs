//! Factur-X 1.0 (ZUGFeRD 2): the invoice as UN/CEFACT Cross Industry Invoice XML in the
//! EN 16931 profile, attached to a PDF/A-3b document as `factur-x.xml` with the relationship
//! `Alternative`, and the `fx:` XMP metadata that tells readers it is there.
//!
//! Typst writes the PDF/A-3b document and the attachment; it cannot write custom XMP, so
//! [`add_xmp_metadata`] rewrites the metadata stream with lopdf afterwards.

mod cii;
mod xmp;

use typst::syntax::Source;

use crate::templates::{Template, project_file};

pub(crate) use cii::invoice_xml;
pub(crate) use xmp::add_xmp_metadata;

/// The virtual path the XML is served at; Typst names the attachment after it.
pub(crate) const XML_PATH: &str = "/factur-x.xml";

/// Virtual path of the generated main file. It cannot clash with a template file, because
/// templates live in `/default/` or come from a folder whose hidden files are skipped.
const MAIN_PATH: &str = "/.invoicer-factur-x.typ";

/// Builds a main file that includes the template and attaches the XML, so any template,
/// custom ones too, gets the attachment without knowing about Factur-X.
pub(crate) fn attaching_main(template: &Template) -> Source {
    let template_path = template.main.vpath().get_with_slash();
    let text = format!(
        "#pdf.attach(\"{XML_PATH}\", relationship: \"alternative\", \
         mime-type: \"text/xml\", description: \"Factur-X invoice\")\n\
         #include \"{template_path}\"\n"
    );
    Source::new(project_file(MAIN_PATH), text)
}
