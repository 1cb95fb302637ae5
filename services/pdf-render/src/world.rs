//! The Typst `World` of one render: the template's files, the invoice data as the virtual file
//! `/data.json`, the logo, and the fonts embedded in the binary. Nothing is read from the file
//! system or the network during a render, so a template cannot reach outside these files.

use std::sync::LazyLock;

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime};
use typst::syntax::{FileId, Source};
use typst::text::{Font, FontBook, FontInfo};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_kit::fonts::FontStore;

use crate::templates::{self, Template};

/// The virtual path of the invoice data, as templates load it with `json("/data.json")`.
pub(crate) const DATA_PATH: &str = "/data.json";

/// The fonts bundled in `fonts/`, with their licences beside them: Noto Sans for Latin, Greek
/// and Cyrillic, Noto Sans Arabic, and WenQuanYi Micro Hei for Chinese, Japanese and Korean.
const BUNDLED_FONTS: &[&[u8]] = &[
    include_bytes!("../fonts/NotoSans-Regular.ttf"),
    include_bytes!("../fonts/NotoSans-Bold.ttf"),
    include_bytes!("../fonts/NotoSansArabic-Regular.ttf"),
    include_bytes!("../fonts/NotoSansArabic-Bold.ttf"),
    include_bytes!("../fonts/wqy-microhei.ttc"),
];

/// State shared by every render: the standard library, the fonts and the built-in template.
pub(crate) struct Assets {
    library: LazyHash<Library>,
    fonts: FontStore,
    pub(crate) builtin: Template,
    data_id: FileId,
}

/// Loaded on first use and kept for the life of the process, so the fonts are parsed once.
pub(crate) static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let mut fonts = FontStore::new();
    fonts.extend(bundled_fonts());
    // Typst's own fonts (Libertinus Serif, New Computer Modern, DejaVu Sans Mono) stay
    // available to custom templates.
    fonts.extend(typst_kit::fonts::embedded());
    Assets {
        library: LazyHash::new(Library::builder().build()),
        fonts,
        builtin: Template::builtin(),
        data_id: templates::project_file(DATA_PATH),
    }
});

fn bundled_fonts() -> impl Iterator<Item = (Font, FontInfo)> {
    BUNDLED_FONTS.iter().flat_map(|data| {
        Font::iter(Bytes::new(*data)).map(|font| {
            let info = font.info().clone();
            (font, info)
        })
    })
}

/// One extra file a render serves beside the template and the data.
#[derive(Clone)]
pub(crate) struct ExtraFile {
    pub(crate) id: FileId,
    pub(crate) bytes: Bytes,
}

pub(crate) struct RenderWorld<'a> {
    assets: &'a Assets,
    template: &'a Template,
    /// A generated main file that wraps the template, or `None` to compile the template's own.
    main: Option<Source>,
    data: Bytes,
    extras: &'a [ExtraFile],
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
            main: None,
            data: Bytes::new(data),
            extras: &[],
            today,
        }
    }

    /// Adds files such as the logo, served at their ids.
    pub(crate) fn with_extras(mut self, extras: &'a [ExtraFile]) -> RenderWorld<'a> {
        self.extras = extras;
        self
    }

    /// Compiles `main` instead of the template's main file.
    pub(crate) fn with_main(mut self, main: Source) -> RenderWorld<'a> {
        self.main = Some(main);
        self
    }

    pub(crate) fn template(&self) -> &Template {
        self.template
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
        match &self.main {
            Some(main) => main.id(),
            None => self.template.main,
        }
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if let Some(main) = self.main.as_ref().filter(|main| main.id() == id) {
            return Ok(main.clone());
        }
        self.template
            .source(id)
            .cloned()
            .ok_or_else(|| Self::not_found(id))
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.assets.data_id {
            return Ok(self.data.clone());
        }
        if let Some(extra) = self.extras.iter().find(|extra| extra.id == id) {
            return Ok(extra.bytes.clone());
        }
        self.template.file(id).ok_or_else(|| Self::not_found(id))
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.assets.fonts.font(index)
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        Some(self.today)
    }
}

#[cfg(test)]
mod tests {
    use super::BUNDLED_FONTS;

    /// Returns the table tags and the `maxp` table of a single font file, read from its table
    /// directory.
    fn tables(data: &[u8]) -> (Vec<String>, &[u8]) {
        let count = u16::from_be_bytes([data[4], data[5]]) as usize;
        let mut tags = Vec::new();
        let mut maxp: &[u8] = &[];
        for index in 0..count {
            let record = &data[12 + 16 * index..28 + 16 * index];
            let tag = String::from_utf8_lossy(&record[..4]).into_owned();
            let offset = u32::from_be_bytes(record[8..12].try_into().unwrap()) as usize;
            let length = u32::from_be_bytes(record[12..16].try_into().unwrap()) as usize;
            if tag == "maxp" {
                maxp = &data[offset..offset + length];
            }
            tags.push(tag);
        }
        (tags, maxp)
    }

    /// The Noto files are bundled without TrueType hinting, which was about half of each
    /// embedded font subset. A hinted file put back would make every PDF larger and slower.
    #[test]
    fn noto_fonts_have_no_hinting() {
        // WenQuanYi Micro Hei, a font collection (`ttcf`), is bundled as Debian ships it.
        let single_fonts = BUNDLED_FONTS
            .iter()
            .filter(|data| !data.starts_with(b"ttcf"));
        let mut checked = 0;
        for data in single_fonts {
            let (tags, maxp) = tables(data);
            assert!(
                tags.iter().any(|tag| tag == "glyf"),
                "no glyf table in {tags:?}"
            );
            for hinting in ["fpgm", "prep", "cvt "] {
                assert!(
                    !tags.iter().any(|tag| tag == hinting),
                    "{hinting:?} table in {tags:?}"
                );
            }
            // maxSizeOfInstructions, the longest glyph program, at byte 26 of maxp 1.0.
            assert!(
                maxp.len() >= 32,
                "maxp of {} bytes, expected at least 32",
                maxp.len()
            );
            assert_eq!(
                maxp[..4],
                [0, 1, 0, 0],
                "maxp version {:?}, expected 1.0",
                &maxp[..4]
            );
            let instructions = u16::from_be_bytes([maxp[26], maxp[27]]);
            assert_eq!(
                instructions, 0,
                "glyph programs of up to {instructions} bytes"
            );
            checked += 1;
        }
        assert_eq!(
            checked, 4,
            "expected the four Noto Sans and Noto Sans Arabic files"
        );
    }
}
