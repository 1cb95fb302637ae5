//! The attachment file name of a rendered invoice.

/// Maximum length of the file name stem in bytes. With `.pdf` appended, the name stays below
/// the 255-byte limit of ext4, NTFS and APFS.
const MAX_STEM_BYTES: usize = 200;

/// Builds `<invoice number>.pdf`, with each character that Windows or Unix file systems
/// reject (`/ \ : * ? " < > |` and control characters) replaced by `_`, and the stem cut at a
/// character boundary to at most 200 bytes.
pub fn pdf_file_name(invoice_number: &str) -> String {
    let mut stem = String::with_capacity(invoice_number.len());
    for character in invoice_number.trim().chars() {
        if stem.len() + character.len_utf8() > MAX_STEM_BYTES {
            break;
        }
        stem.push(if is_unsafe(character) { '_' } else { character });
    }
    if stem.is_empty() {
        stem.push_str("invoice");
    }
    format!("{stem}.pdf")
}

fn is_unsafe(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'
        )
}

#[cfg(test)]
mod tests {
    use super::pdf_file_name;

    #[test]
    fn file_name_keeps_ordinary_numbers() {
        assert_eq!(pdf_file_name("INV-2026-0001"), "INV-2026-0001.pdf");
        assert_eq!(pdf_file_name("Fäktura 7"), "Fäktura 7.pdf");
    }

    #[test]
    fn file_name_replaces_each_unsafe_character() {
        for character in [
            '/', '\\', ':', '*', '?', '"', '<', '>', '|', '\n', '\t', '\u{0}', '\u{7f}',
        ] {
            let number = format!("A{character}B");
            assert_eq!(pdf_file_name(&number), "A_B.pdf", "character {character:?}");
        }
    }

    #[test]
    fn file_name_replaces_path_traversal() {
        assert_eq!(pdf_file_name("../../etc/passwd"), ".._.._etc_passwd.pdf");
        assert_eq!(pdf_file_name(r"C:\Windows\x"), "C__Windows_x.pdf");
    }

    #[test]
    fn file_name_of_blank_number_is_invoice() {
        assert_eq!(pdf_file_name("  "), "invoice.pdf");
    }

    #[test]
    fn file_name_is_cut_at_character_boundary() {
        let name = pdf_file_name(&"é".repeat(150));
        assert_eq!(name, format!("{}.pdf", "é".repeat(100)));
        assert!(name.len() <= 255);
    }
}
