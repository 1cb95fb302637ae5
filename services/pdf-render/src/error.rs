//! The error type of rendering.

/// The errors of [`crate::Renderer::render`].
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The request named a template that is not compiled into this binary.
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
}
