//! The error types of rendering and of setting the renderer up.

use std::path::PathBuf;

/// The errors of [`crate::Renderer::render`].
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The request named a template that this renderer does not have.
    #[error("unknown template {name:?}: expected one of {}", known.join(", "))]
    UnknownTemplate {
        name: String,
        known: Vec<&'static str>,
    },

    /// A required input field is empty or out of range.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },

    /// The invoice contains characters that no bundled font can draw. Rendering them would
    /// print empty boxes, so the invoice is not rendered.
    #[error(
        "no bundled font has the characters {}",
        describe_characters(characters)
    )]
    MissingGlyphs { characters: Vec<char> },

    /// The template failed to compile. The diagnostics point into the template sources; they
    /// are meant for the server log, not for clients.
    #[error("template {template:?} failed to compile: {}", diagnostics.join("; "))]
    Compile {
        template: &'static str,
        diagnostics: Vec<String>,
    },

    /// The compiled document could not be written as PDF.
    #[error("pdf export of template {template:?} failed: {}", diagnostics.join("; "))]
    Export {
        template: &'static str,
        diagnostics: Vec<String>,
    },

    /// The Factur-X metadata could not be added to the exported PDF.
    #[error("adding the factur-x metadata failed: {message}")]
    FacturX { message: String },
}

/// The errors of [`crate::Renderer::with_settings`], all found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read pdf.template file {path}: {cause}")]
    TemplateRead {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("pdf.template file {path} is not UTF-8 text")]
    TemplateEncoding { path: PathBuf },

    #[error(
        "pdf.template folder holds more than {max_files} files or {max_megabytes} MiB (at {path}); \
         move the template into a folder of its own"
    )]
    TemplateFolderTooLarge {
        path: PathBuf,
        max_files: usize,
        max_megabytes: u64,
    },

    /// The template does not compile against the sample invoice. Each diagnostic starts with
    /// `file:line:column`.
    #[error("pdf.template {path} fails on a sample invoice: {}", diagnostics.join("; "))]
    TemplateCheck {
        path: PathBuf,
        diagnostics: Vec<String>,
    },

    #[error("cannot read pdf.logo file {path}: {cause}")]
    LogoRead {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("pdf.logo file {path} is not a .png, .jpg, .jpeg or .svg file")]
    LogoFormat { path: PathBuf },

    #[error(
        "pdf.factur_x needs company.country as a two-letter ISO 3166-1 code such as DE, got {value:?}"
    )]
    FacturXCountry { value: String },

    /// The logo, bank details or language do not render with the built-in template.
    #[error("the pdf settings fail on a sample invoice: {0}")]
    SampleRender(#[source] RenderError),
}

/// Lists characters as `U+0E01 'ก'`, separated by commas.
pub(crate) fn describe_characters(characters: &[char]) -> String {
    characters
        .iter()
        .map(|character| format!("U+{:04X} {character:?}", u32::from(*character)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_glyphs_message_names_code_points() {
        let error = RenderError::MissingGlyphs {
            characters: vec!['ก', '\u{1F600}'],
        };
        assert_eq!(
            error.to_string(),
            "no bundled font has the characters U+0E01 'ก', U+1F600 '😀'"
        );
    }
}
