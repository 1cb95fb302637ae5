//! Templates: the built-in one compiled into the binary, and a company's own Typst file read
//! once at start-up together with the files in its folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use typst::foundations::Bytes;
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};

use crate::error::SetupError;

/// The built-in template, used when a request names none and no custom template is set.
pub const DEFAULT_TEMPLATE: &str = "default";

/// The name of the template read from `pdf.template`. It replaces the built-in template as
/// the one a request without a template name gets.
pub const CUSTOM_TEMPLATE: &str = "custom";

/// The built-in template's files, all under `/default/`.
const DEFAULT_FILES: &[(&str, &str)] = &[(
    "invoice.typ",
    include_str!("../templates/default/invoice.typ"),
)];

/// Limits on the folder of a custom template, so a template path that points at a large
/// folder fails at start-up instead of filling the memory.
const MAX_TEMPLATE_FILES: usize = 256;
const MAX_TEMPLATE_BYTES: u64 = 64 * 1024 * 1024;
const MAX_TEMPLATE_DEPTH: usize = 4;

/// A template with its sources parsed once, so the compiler's cache gets the same sources on
/// every render.
pub(crate) struct Template {
    pub(crate) name: &'static str,
    pub(crate) main: FileId,
    sources: HashMap<FileId, Source>,
    files: HashMap<FileId, Bytes>,
    /// The folder a custom template was read from, to turn virtual paths in diagnostics back
    /// into file paths.
    root: Option<PathBuf>,
}

impl Template {
    pub(crate) fn source(&self, id: FileId) -> Option<&Source> {
        self.sources.get(&id)
    }

    pub(crate) fn file(&self, id: FileId) -> Option<Bytes> {
        if let Some(bytes) = self.files.get(&id) {
            return Some(bytes.clone());
        }
        let source = self.sources.get(&id)?;
        Some(Bytes::from_string(source.text().to_owned()))
    }

    /// Returns the file a virtual path of this template was read from, or the virtual path
    /// itself for the built-in template.
    pub(crate) fn display_path(&self, id: FileId) -> String {
        let virtual_path = id.vpath().get_with_slash();
        let own = self.sources.contains_key(&id) || self.files.contains_key(&id);
        match self.root.as_ref().filter(|_| own) {
            Some(root) => root
                .join(virtual_path.trim_start_matches('/'))
                .display()
                .to_string(),
            None => virtual_path.to_owned(),
        }
    }

    /// Builds a template of one source file, for tests.
    #[cfg(test)]
    pub(crate) fn single(name: &'static str, path: &str, text: &str) -> Template {
        let main = project_file(path);
        Template {
            name,
            main,
            sources: HashMap::from([(main, Source::new(main, text.to_owned()))]),
            files: HashMap::new(),
            root: None,
        }
    }

    /// Builds the built-in template.
    pub(crate) fn builtin() -> Template {
        let sources = DEFAULT_FILES
            .iter()
            .map(|(file, text)| {
                let id = project_file(&format!("/{DEFAULT_TEMPLATE}/{file}"));
                (id, Source::new(id, (*text).to_owned()))
            })
            .collect();
        Template {
            name: DEFAULT_TEMPLATE,
            main: project_file(&format!("/{DEFAULT_TEMPLATE}/invoice.typ")),
            sources,
            files: HashMap::new(),
            root: None,
        }
    }

    /// Reads a custom template: `main` and every file in its folder (up to four levels deep,
    /// hidden entries skipped) become the template's project, with that folder as `/`.
    pub(crate) fn read(main: &Path) -> Result<Template, SetupError> {
        let main_bytes = std::fs::read(main).map_err(|cause| SetupError::TemplateRead {
            path: main.to_owned(),
            cause,
        })?;
        let root = main
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let file_name = main.file_name().unwrap_or_default().to_string_lossy();
        let main_id = project_file(&format!("/{file_name}"));

        let mut template = Template {
            name: CUSTOM_TEMPLATE,
            main: main_id,
            sources: HashMap::new(),
            files: HashMap::new(),
            root: Some(root.clone()),
        };
        let mut budget = ReadBudget::default();
        template.read_folder(&root, "", 0, &mut budget)?;
        template.insert(main, main_id, main_bytes)?;
        Ok(template)
    }

    fn read_folder(
        &mut self,
        folder: &Path,
        prefix: &str,
        depth: usize,
        budget: &mut ReadBudget,
    ) -> Result<(), SetupError> {
        let read_error = |cause| SetupError::TemplateRead {
            path: folder.to_owned(),
            cause,
        };
        let mut entries = std::fs::read_dir(folder)
            .map_err(read_error)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_error)?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let virtual_path = format!("{prefix}/{name}");
            let file_type = entry
                .file_type()
                .map_err(|cause| SetupError::TemplateRead {
                    path: path.clone(),
                    cause,
                })?;
            if file_type.is_dir() && depth + 1 < MAX_TEMPLATE_DEPTH {
                self.read_folder(&path, &virtual_path, depth + 1, budget)?;
            } else if file_type.is_file() {
                budget.take(&path, &entry)?;
                let bytes = std::fs::read(&path).map_err(|cause| SetupError::TemplateRead {
                    path: path.clone(),
                    cause,
                })?;
                let Ok(id) = VirtualPath::new(&virtual_path)
                    .map(|vpath| RootedPath::new(VirtualRoot::Project, vpath).intern())
                else {
                    continue;
                };
                self.insert(&path, id, bytes)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, path: &Path, id: FileId, bytes: Vec<u8>) -> Result<(), SetupError> {
        let is_source = path.extension().is_some_and(|extension| extension == "typ");
        if !is_source {
            self.files.insert(id, Bytes::new(bytes));
            return Ok(());
        }
        let text = String::from_utf8(bytes).map_err(|_| SetupError::TemplateEncoding {
            path: path.to_owned(),
        })?;
        self.sources.insert(id, Source::new(id, text));
        Ok(())
    }
}

#[derive(Default)]
struct ReadBudget {
    files: usize,
    bytes: u64,
}

impl ReadBudget {
    fn take(&mut self, path: &Path, entry: &std::fs::DirEntry) -> Result<(), SetupError> {
        let size = entry.metadata().map(|metadata| metadata.len()).unwrap_or(0);
        self.files += 1;
        self.bytes += size;
        if self.files > MAX_TEMPLATE_FILES || self.bytes > MAX_TEMPLATE_BYTES {
            return Err(SetupError::TemplateFolderTooLarge {
                path: path.to_owned(),
                max_files: MAX_TEMPLATE_FILES,
                max_megabytes: MAX_TEMPLATE_BYTES / (1024 * 1024),
            });
        }
        Ok(())
    }
}

/// Returns the id of a project file at an absolute virtual path such as `/data.json`.
pub(crate) fn project_file(path: &str) -> FileId {
    let path = VirtualPath::new(path).expect("embedded file paths are valid virtual paths");
    RootedPath::new(VirtualRoot::Project, path).intern()
}
