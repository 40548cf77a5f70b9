//! Name and predicate keys: how "ＡＣＭＥ  Corp" and "acme corp" become one entity.
//!
//! `key(name)` = NFKC → full case folding → NFKC again (case folding can denormalize) →
//! default-ignorable characters dropped → every run of white space becomes one space →
//! trimmed. Predicate keys additionally treat `-` and `_` as white space, so `works at`,
//! `works_at` and `WORKS-AT` are one predicate.
//!
//! This module is pure: it never touches the database, so all of it runs before any lock
//! is taken (DESIGN.md, principle 5).

use unicode_normalization::IsNormalized;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::is_nfkc_quick;

use crate::error::{Error, InvalidName};

/// The longest name (in UTF-8 bytes, as written by the caller) that cairn accepts.
pub const MAX_NAME_BYTES: usize = 1024;

/// Normalizes an entity name into its lookup key.
///
/// ```
/// assert_eq!(cairn::normalize_name("ＡＣＭＥ\u{3000} Corp").unwrap(), "acme corp");
/// assert_eq!(cairn::normalize_name("STRASSE").unwrap(), cairn::normalize_name("Straße").unwrap());
/// assert!(cairn::normalize_name(" \u{a0} ").is_err());
/// ```
pub fn normalize_name(name: &str) -> Result<String, Error> {
    key_with(name, false)
}

/// Normalizes a predicate; spaces, hyphens and underscores between words are equivalent.
///
/// ```
/// let k = cairn::normalize_predicate("works_at").unwrap();
/// assert_eq!(k, "works at");
/// assert_eq!(cairn::normalize_predicate("WORKS-AT").unwrap(), k);
/// ```
pub fn normalize_predicate(predicate: &str) -> Result<String, Error> {
    key_with(predicate, true)
}

/// The matching form of running text: the folding of [`normalize_name`] with every run of
/// white space as one space and no length limit, so a name's key occurs in the folded text
/// wherever the name (in any case, width or spacing) occurs in the text.
pub(crate) fn fold_text(text: &str) -> String {
    collapse_separators(&fold(text), false)
}

/// Han ideographs, kana and Hangul: the scripts written without spaces between words
/// (or, for Hangul, with particles attached to them).
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(
        c,
        '\u{1100}'..='\u{11FF}'       // Hangul Jamo
            | '\u{3005}'..='\u{3007}' // 々 〆 〇
            | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana (with ー)
            | '\u{3130}'..='\u{318F}' // Hangul compatibility Jamo
            | '\u{31F0}'..='\u{31FF}' // Katakana phonetic extensions
            | '\u{3400}'..='\u{4DBF}' // CJK extension A
            | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
            | '\u{A960}'..='\u{A97F}' // Hangul Jamo extended A
            | '\u{AC00}'..='\u{D7AF}' // Hangul syllables
            | '\u{D7B0}'..='\u{D7FF}' // Hangul Jamo extended B
            | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
            | '\u{20000}'..='\u{3134F}' // CJK extensions B to G
    )
}

/// The display form cairn stores for a name: what the caller wrote, trimmed.
pub(crate) fn display_name(name: &str) -> &str {
    name.trim_matches(|c: char| c.is_whitespace() || is_ignorable(c))
}

fn key_with(name: &str, predicate: bool) -> Result<String, Error> {
    validate_raw(name)?;
    let folded = fold(name);
    let key = collapse_separators(&folded, predicate);
    if key.is_empty() {
        return Err(invalid(name, InvalidName::Blank));
    }
    Ok(key)
}

fn validate_raw(name: &str) -> Result<(), Error> {
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid(
            name,
            InvalidName::TooLong {
                bytes: name.len(),
                max: MAX_NAME_BYTES,
            },
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() && !c.is_whitespace()) {
        return Err(invalid(name, InvalidName::ControlCharacter(c)));
    }
    Ok(())
}

/// NFKC + full case folding. ASCII skips the Unicode tables entirely: it is the hot case
/// for agents writing English names, and for ASCII all three steps reduce to lowercasing.
fn fold(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    let nfkc: String = if is_nfkc_quick(name.chars()) == IsNormalized::Yes {
        name.to_owned()
    } else {
        name.nfkc().collect()
    };
    let folded = caseless::default_case_fold_str(&nfkc);
    if is_nfkc_quick(folded.chars()) == IsNormalized::Yes {
        folded
    } else {
        folded.nfkc().collect()
    }
}

fn collapse_separators(folded: &str, predicate: bool) -> String {
    let mut out = String::with_capacity(folded.len());
    let mut pending_space = false;
    for c in folded.chars() {
        if is_ignorable(c) {
            continue;
        }
        let is_separator = c.is_whitespace() || (predicate && (c == '-' || c == '_'));
        if is_separator {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Characters that render as nothing and must not split one name into two keys
/// (zero-width space and joiners, word joiner, byte-order mark, soft hyphen).
fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

fn invalid(name: &str, reason: InvalidName) -> Error {
    Error::InvalidName {
        name: preview(name),
        reason,
    }
}

/// A bounded, printable preview of a rejected input for error messages.
pub(crate) fn preview(text: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_one_name_share_a_key() {
        let forms = [
            "Acme Corp",
            "acme corp",
            "ＡＣＭＥ Corp",
            "Acme  Corp",
            " Acme Corp ",
            "Acme\u{a0}Corp",
            "ACME\u{3000}CORP",
            "Acme\tCorp\n",
            "Acme\u{200B} Corp",
        ];
        for form in forms {
            assert_eq!(normalize_name(form).unwrap(), "acme corp", "{form:?}");
        }
    }

    #[test]
    fn composed_and_decomposed_forms_match() {
        assert_eq!(
            normalize_name("Café").unwrap(),
            normalize_name("Cafe\u{301}").unwrap()
        );
        assert_eq!(normalize_name("Café").unwrap(), "café");
    }

    #[test]
    fn full_case_folding() {
        assert_eq!(normalize_name("STRASSE").unwrap(), "strasse");
        assert_eq!(normalize_name("Straße").unwrap(), "strasse");
        assert_eq!(normalize_name("ẞ").unwrap(), "ss");
        assert_eq!(
            normalize_name("ΣΊΣΥΦΟΣ").unwrap(),
            normalize_name("σίσυφος").unwrap()
        );
        assert_eq!(normalize_name("ﬁle").unwrap(), "file");
    }

    #[test]
    fn predicates_treat_hyphen_and_underscore_as_space() {
        for form in [
            "works at",
            "works_at",
            "WORKS-AT",
            " works -_ at ",
            "Works\u{a0}At",
        ] {
            assert_eq!(normalize_predicate(form).unwrap(), "works at", "{form:?}");
        }
        // Names keep hyphens: "Jean-Luc" and "Jean Luc" may be different people.
        assert_ne!(
            normalize_name("Jean-Luc").unwrap(),
            normalize_name("Jean Luc").unwrap()
        );
    }

    #[test]
    fn bad_names_are_typed_errors() {
        let blank = |r: Result<String, Error>| {
            matches!(
                r,
                Err(Error::InvalidName {
                    reason: InvalidName::Blank,
                    ..
                })
            )
        };
        assert!(blank(normalize_name("")));
        assert!(blank(normalize_name("   \u{a0}\u{3000}")));
        assert!(blank(normalize_name("\u{200B}")));
        assert!(blank(normalize_predicate("-_-")));
        assert!(matches!(
            normalize_name("a\u{0}b"),
            Err(Error::InvalidName {
                reason: InvalidName::ControlCharacter('\u{0}'),
                ..
            })
        ));
        assert!(matches!(
            normalize_name("\u{7}\u{1b}"),
            Err(Error::InvalidName {
                reason: InvalidName::ControlCharacter(_),
                ..
            })
        ));
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            normalize_name(&long),
            Err(Error::InvalidName {
                reason: InvalidName::TooLong {
                    bytes: 1025,
                    max: 1024
                },
                ..
            })
        ));
        assert!(normalize_name(&"x".repeat(MAX_NAME_BYTES)).is_ok());
    }

    #[test]
    fn display_name_is_trimmed_but_otherwise_verbatim() {
        assert_eq!(display_name("  ＡＣＭＥ Corp\u{3000}"), "ＡＣＭＥ Corp");
    }

    #[test]
    fn error_preview_is_bounded() {
        let err = normalize_name(&"é".repeat(2000)).unwrap_err().to_string();
        assert!(err.len() < 300, "{err}");
    }
}
