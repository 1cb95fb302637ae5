//! Finds the characters of a laid-out document that no font could draw. Typst prints such a
//! character as the font's `.notdef` glyph (glyph id 0, an empty box); an invoice with empty
//! boxes in a name or an address must not go out, so the render fails instead.

use std::collections::BTreeSet;

use typst::layout::{Frame, FrameItem};
use typst_layout::PagedDocument;

/// Returns the distinct characters drawn with glyph id 0, in code point order.
pub(crate) fn missing_characters(document: &PagedDocument) -> Vec<char> {
    let mut missing = BTreeSet::new();
    for page in document.pages() {
        collect(&page.frame, &mut missing);
    }
    missing.into_iter().collect()
}

fn collect(frame: &Frame, missing: &mut BTreeSet<char>) {
    for (_, item) in frame.items() {
        match item {
            FrameItem::Group(group) => collect(&group.frame, missing),
            FrameItem::Text(text) => {
                for glyph in text.glyphs.iter().filter(|glyph| glyph.id == 0) {
                    let characters = text.text.get(glyph.range()).unwrap_or_default();
                    missing.extend(characters.chars().filter(|c| !c.is_whitespace()));
                }
            }
            _ => {}
        }
    }
}
