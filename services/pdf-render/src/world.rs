//! The Typst `World` of one render: the embedded template sources, the invoice data as the
//! virtual file `/data.json`, and the fonts embedded in the binary. Nothing is read from the
//! file system or the network, so a template cannot reach outside these files.

use std::sync::LazyLock;

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime};
use typst::syntax::{FileId, Source};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_kit::fonts::FontStore;

use crate::templates::{self, Template};

/// The virtual path of the invoice data, as templates load it with `json("/data.json")`.
pub(crate) const DATA_PATH: &str = "/data.json";

/// State shared by every render: the standard library, the fonts and the parsed templates.
pub(crate) struct Assets {
    library: LazyHash<Library>,
    fonts: FontStore,
    pub(crate) templates: Vec<Template>,
    data_id: FileId,
}

/// Loaded on first use and kept for the life of the process, so the fonts are parsed once.
pub(crate) static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let mut fonts = FontStore::new();
    fonts.extend(typst_kit::fonts::embedded());
    Assets {
        library: LazyHash::new(Library::builder().build()),
        fonts,
        templates: templates::load_all(),
        data_id: templates::project_file(DATA_PATH),
    }
});

impl Assets {
    pub(crate) fn template(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|template| template.name == name)
    }

    pub(crate) fn template_names(&self) -> Vec<&'static str> {
        self.templates
            .iter()
            .map(|template| template.name)
            .collect()
    }
}

pub(crate) struct RenderWorld<'a> {
    assets: &'a Assets,
    template: &'a Template,
    data: Bytes,
    /// The date `datetime.today()` returns: the issue date, so output never depends on the clock.
    today: Datetime,
}

impl<'a> RenderWorld<'a> {
    pub(crate) fn new(
        assets: &'a Assets,
        template: &'a Template,
        data: Vec<u8>,
        today: Datetime,
    ) -> RenderWorld<'a> {
        RenderWorld {
            assets,
            template,
            data: Bytes::new(data),
            today,
        }
    }

    fn not_found(id: FileId) -> FileError {
        FileError::NotFound(id.vpath().get_with_slash().into())
    }
}

impl World for RenderWorld<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.assets.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        self.assets.fonts.book()
    }

    fn main(&self) -> FileId {
        self.template.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        self.template
            .source(id)
            .cloned()
            .ok_or_else(|| Self::not_found(id))
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.assets.data_id {
            return Ok(self.data.clone());
        }
        match self.template.source(id) {
            Some(source) => Ok(Bytes::from_string(source.text().to_owned())),
            None => Err(Self::not_found(id)),
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.assets.fonts.font(index)
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        Some(self.today)
    }
}
