//! The Typst templates compiled into the binary, looked up by name.

use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};

/// The template used when a request names none.
pub const DEFAULT_TEMPLATE: &str = "default";

/// One template: a main file and the files it imports, all under `/<name>/`.
struct TemplateFiles {
    name: &'static str,
    main: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const EMBEDDED: &[TemplateFiles] = &[TemplateFiles {
    name: DEFAULT_TEMPLATE,
    main: "invoice.typ",
    files: &[
        (
            "invoice.typ",
            include_str!("../templates/default/invoice.typ"),
        ),
        (
            "labels.typ",
            include_str!("../templates/default/labels.typ"),
        ),
    ],
}];

/// A template with its sources parsed once, so the compiler's cache gets the same sources on
/// every render.
pub(crate) struct Template {
    pub(crate) name: &'static str,
    pub(crate) main: FileId,
    pub(crate) sources: Vec<Source>,
}

impl Template {
    pub(crate) fn source(&self, id: FileId) -> Option<&Source> {
        self.sources.iter().find(|source| source.id() == id)
    }
}

/// Parses every embedded template.
pub(crate) fn load_all() -> Vec<Template> {
    EMBEDDED.iter().map(load).collect()
}

fn load(template: &TemplateFiles) -> Template {
    let sources = template
        .files
        .iter()
        .map(|(file, text)| Source::new(file_id(template.name, file), (*text).to_owned()))
        .collect();
    Template {
        name: template.name,
        main: file_id(template.name, template.main),
        sources,
    }
}

/// Returns the id of a project file at an absolute virtual path such as `/data.json`.
pub(crate) fn project_file(path: &str) -> FileId {
    let path = VirtualPath::new(path).expect("embedded file paths are valid virtual paths");
    RootedPath::new(VirtualRoot::Project, path).intern()
}

fn file_id(template: &str, file: &str) -> FileId {
    project_file(&format!("/{template}/{file}"))
}
