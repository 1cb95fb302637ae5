//! Adds the Factur-X properties (`fx:` namespace) and their PDF/A extension schema to the XMP
//! metadata of a PDF/A-3 document that Typst wrote.

use lopdf::{Document, Object};

use crate::error::RenderError;

/// The Factur-X 1.0 XMP namespace.
const FX_NAMESPACE: &str = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#";

/// Returns `pdf` with the Factur-X properties in its XMP metadata stream. The result is as
/// deterministic as the input: lopdf writes the objects in id order.
pub(crate) fn add_xmp_metadata(pdf: &[u8]) -> Result<Vec<u8>, RenderError> {
    let mut document = Document::load_mem(pdf).map_err(failure("reading the pdf"))?;
    let metadata_id = document
        .catalog()
        .and_then(|catalog| catalog.get(b"Metadata"))
        .and_then(Object::as_reference)
        .map_err(failure("finding the xmp metadata"))?;
    let stream = document
        .get_object_mut(metadata_id)
        .and_then(Object::as_stream_mut)
        .map_err(failure("reading the xmp metadata"))?;
    let content = match stream.decompressed_content() {
        Ok(content) => content,
        Err(_) => stream.content.clone(),
    };
    let xmp = String::from_utf8(content).map_err(|_| RenderError::FacturX {
        message: "the xmp metadata is not UTF-8".to_owned(),
    })?;
    let extended = with_factur_x(&xmp)?;
    // PDF/A requires the metadata stream to be unfiltered, so it stays readable by tools
    // that do not decompress.
    stream.set_plain_content(extended.into_bytes());

    let mut output = Vec::with_capacity(pdf.len() + 4096);
    document
        .save_to(&mut output)
        .map_err(|error| RenderError::FacturX {
            message: format!("writing the pdf: {error}"),
        })?;
    Ok(output)
}

fn failure(step: &'static str) -> impl Fn(lopdf::Error) -> RenderError {
    move |error| RenderError::FacturX {
        message: format!("{step}: {error}"),
    }
}

/// Inserts the `fx:` schema into the PDF/A extension schema list (creating the list when the
/// XMP has none) and the four `fx:` properties before `</rdf:RDF>`.
fn with_factur_x(xmp: &str) -> Result<String, RenderError> {
    let end = xmp
        .rfind("</rdf:RDF>")
        .ok_or_else(|| RenderError::FacturX {
            message: "the xmp metadata has no rdf:RDF element".to_owned(),
        })?;
    let properties = format!(
        "<rdf:Description rdf:about=\"\" xmlns:fx=\"{FX_NAMESPACE}\">\
         <fx:DocumentType>INVOICE</fx:DocumentType>\
         <fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>\
         <fx:Version>1.0</fx:Version>\
         <fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>\
         </rdf:Description>"
    );
    let existing_bag = xmp.find("<pdfaExtension:schemas>").and_then(|start| {
        let bag = xmp[start..].find("<rdf:Bag>")?;
        Some(start + bag + "<rdf:Bag>".len())
    });

    let mut extended = String::with_capacity(xmp.len() + 4096);
    match existing_bag {
        Some(bag_content) => {
            extended.push_str(&xmp[..bag_content]);
            extended.push_str(&schema_item());
            extended.push_str(&xmp[bag_content..end]);
        }
        None => {
            extended.push_str(&xmp[..end]);
            extended.push_str(
                "<rdf:Description rdf:about=\"\" \
                 xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\">\
                 <pdfaExtension:schemas><rdf:Bag>",
            );
            extended.push_str(&schema_item());
            extended.push_str("</rdf:Bag></pdfaExtension:schemas></rdf:Description>");
        }
    }
    extended.push_str(&properties);
    extended.push_str(&xmp[end..]);
    Ok(extended)
}

/// Returns the PDF/A extension schema entry that declares the `fx:` properties, as PDF/A
/// requires for every property outside the predefined XMP schemas. It declares its own
/// namespaces, so it fits into a schema list written by someone else.
fn schema_item() -> String {
    let properties = [
        (
            "DocumentFileName",
            "The name of the embedded XML invoice file",
        ),
        ("DocumentType", "The type of the hybrid document: INVOICE"),
        ("Version", "The version of the Factur-X XML schema"),
        (
            "ConformanceLevel",
            "The Factur-X profile of the embedded XML",
        ),
    ];
    let mut schema = format!(
        "<rdf:li rdf:parseType=\"Resource\" \
         xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\" \
         xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">\
         <pdfaSchema:schema>Factur-X PDF/A extension schema</pdfaSchema:schema>\
         <pdfaSchema:namespaceURI>{FX_NAMESPACE}</pdfaSchema:namespaceURI>\
         <pdfaSchema:prefix>fx</pdfaSchema:prefix>\
         <pdfaSchema:property><rdf:Seq>"
    );
    for (name, description) in properties {
        schema.push_str(&format!(
            "<rdf:li rdf:parseType=\"Resource\">\
             <pdfaProperty:name>{name}</pdfaProperty:name>\
             <pdfaProperty:valueType>Text</pdfaProperty:valueType>\
             <pdfaProperty:category>external</pdfaProperty:category>\
             <pdfaProperty:description>{description}</pdfaProperty:description>\
             </rdf:li>"
        ));
    }
    schema.push_str("</rdf:Seq></pdfaSchema:property></rdf:li>");
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_go_inside_rdf() {
        let xmp = "<x:xmpmeta><rdf:RDF><rdf:Description/></rdf:RDF></x:xmpmeta>";
        let extended = with_factur_x(xmp).unwrap();
        let fx = extended.find("<fx:ConformanceLevel>EN 16931").unwrap();
        let end = extended.find("</rdf:RDF>").unwrap();
        assert!(fx < end, "{extended}");
        assert!(extended.contains("<pdfaSchema:prefix>fx</pdfaSchema:prefix>"));
    }

    #[test]
    fn schema_joins_existing_schema_list() {
        let xmp = "<rdf:RDF><rdf:Description><pdfaExtension:schemas><rdf:Bag><rdf:li>other</rdf:li>\
                   </rdf:Bag></pdfaExtension:schemas></rdf:Description></rdf:RDF>";
        let extended = with_factur_x(xmp).unwrap();
        assert_eq!(
            extended.matches("<pdfaExtension:schemas>").count(),
            1,
            "{extended}"
        );
        assert!(extended.contains("<rdf:li>other</rdf:li>"), "{extended}");
        assert!(extended.contains("<pdfaSchema:prefix>fx</pdfaSchema:prefix>"));
    }

    #[test]
    fn xmp_without_rdf_is_rejected() {
        let error = with_factur_x("<x:xmpmeta/>").unwrap_err();
        assert!(error.to_string().contains("rdf:RDF"), "{error}");
    }
}
