//! Name and predicate keys: how "ＡＣＭＥ  Corp" and "acme corp" become one entity.
//!
//! `key(name)` = default-ignorable characters dropped (zero-width spaces and joiners,
//! direction marks, variation selectors, Hangul fillers...) → NFKC → full case folding →
//! NFKC again (case folding can denormalize) → every run of white space becomes one
//! space → trimmed. Dropping the invisible characters first matters: `"Cafe\u{200b}\u{301}"`
//! must compose to the `é` of `"Café"`. The key of a key is itself. Predicate keys
//! additionally treat `-` and `_` as white space, so `works at`, `works_at` and
//! `WORKS-AT` are one predicate.
//!
//! Names with control characters or bidirectional embeddings, overrides and isolates
//! (U+202A–U+202E, U+2066–U+2069: they reorder what a reader sees, so two names that
//! look the same could differ) are refused, as are agent ids and other labels with them.
//!
//! This module is pure: it never touches the database, so all of it runs before any lock
//! is taken (DESIGN.md, principle 5).

use std::borrow::Cow;

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

/// The key of `name` (a predicate's when `predicate`) without the length limit: what an
/// import shortens an over-long name by (see `ops::jsonl`), so that every spelling of it
/// is shortened alike.
pub(crate) fn key_unbounded(name: &str, predicate: bool) -> Result<String, Error> {
    key_checked(name, predicate, false)
}

fn key_with(name: &str, predicate: bool) -> Result<String, Error> {
    key_checked(name, predicate, true)
}

fn key_checked(name: &str, predicate: bool, bounded: bool) -> Result<String, Error> {
    let what = if predicate { "predicate" } else { "name" };
    if bounded {
        validate_raw(name).map_err(|e| e.for_name(what))?;
    } else {
        validate_chars(name).map_err(|e| e.for_name(what))?;
    }
    let folded = fold(name);
    let key = collapse_separators(&folded, predicate);
    if key.is_empty() {
        return Err(invalid(name, InvalidName::Blank).for_name(what));
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
    validate_chars(name)
}

fn validate_chars(name: &str) -> Result<(), Error> {
    if let Some(c) = name.chars().find(|&c| is_refused(c)) {
        let reason = if is_bidi_reordering(c) {
            InvalidName::BidiControl(c)
        } else {
            InvalidName::ControlCharacter(c)
        };
        return Err(invalid(name, reason));
    }
    Ok(())
}

/// Control characters other than white space, and the bidirectional formatting
/// characters that reorder text (the direction marks are merely dropped).
pub(crate) fn is_refused(c: char) -> bool {
    (c.is_control() && !c.is_whitespace()) || is_bidi_reordering(c)
}

fn is_bidi_reordering(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Invisible characters dropped, NFKC, full case folding, NFKC. ASCII skips the Unicode
/// tables entirely: it is the hot case for agents writing English names, and for ASCII
/// every step reduces to lowercasing.
fn fold(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    let visible = drop_ignorable(name);
    let folded = nfkc_owned(caseless::default_case_fold_str(&nfkc(&visible)));
    // Compatibility decompositions can produce ignorable characters (U+FFA0 → U+1160).
    if folded.chars().any(is_ignorable) {
        nfkc_owned(drop_ignorable(&folded).into_owned())
    } else {
        folded
    }
}

fn nfkc(text: &str) -> Cow<'_, str> {
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfkc().collect())
    }
}

fn nfkc_owned(text: String) -> String {
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        text
    } else {
        text.nfkc().collect()
    }
}

fn drop_ignorable(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_ignorable) {
        Cow::Owned(text.chars().filter(|&c| !is_ignorable(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn collapse_separators(folded: &str, predicate: bool) -> String {
    let mut out = String::with_capacity(folded.len());
    let mut pending_space = false;
    for c in folded.chars() {
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

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt, Unicode 16):
/// characters that render as nothing (zero-width space and joiners, soft hyphen,
/// direction marks, the combining grapheme joiner, Mongolian selectors, variation
/// selectors, Hangul fillers, tags...) and so must not split one name into two keys.
fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

fn invalid(name: &str, reason: InvalidName) -> Error {
    Error::InvalidName {
        what: "name".into(),
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

    #[test]
    fn invisible_characters_never_split_a_name() {
        let base = normalize_name("Acme Corp").unwrap();
        for invisible in [
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{034F}',
            '\u{FE0F}',
            '\u{FE00}',
            '\u{180E}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{2060}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{200B}',
            '\u{200D}',
            '\u{E0041}',
            '\u{1D173}',
        ] {
            for name in [
                format!("{invisible}Acme Corp"),
                format!("Acme Corp{invisible}"),
                format!("Ac{invisible}me Corp"),
                format!("Acme{invisible} Corp"),
            ] {
                assert_eq!(normalize_name(&name).unwrap(), base, "{name:?}");
            }
        }
        // Dropped before NFKC: the accent composes with the letter across the space.
        assert_eq!(
            normalize_name("Cafe\u{200B}\u{301}").unwrap(),
            normalize_name("Café").unwrap()
        );
        assert_eq!(normalize_name("e\u{34F}\u{301}").unwrap(), "é");
        assert!(matches!(
            normalize_name("\u{3164}"),
            Err(Error::InvalidName {
                reason: InvalidName::Blank,
                ..
            })
        ));
    }

    #[test]
    fn bidi_reordering_is_refused_by_name() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}',
        ] {
            let err = normalize_name(&format!("Acme{c}Corp")).unwrap_err();
            assert!(
                matches!(err, Error::InvalidName { reason: InvalidName::BidiControl(x), .. } if x == c),
                "{c:?}: {err}"
            );
            assert!(err.to_string().contains(&format!("{c:?}")), "{err}");
        }
    }

    #[test]
    fn a_key_is_its_own_key() {
        for name in [
            "Acme Corp",
            "ＡＣＭＥ Corp",
            "Straße",
            "ﬁle",
            "Cafe\u{200B}\u{301}",
            "\u{FFA0}x",
            "ΣΊΣΥΦΟΣ",
            "ǅ",
            "\u{1E9E}",
            "ﾊﾝｶｸ",
            "㍿",
            "e\u{34F}\u{301}",
        ] {
            let key = normalize_name(name).unwrap();
            assert_eq!(normalize_name(&key).unwrap(), key, "{name:?}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Letters, marks, spaces and the invisible characters, mixed.
        fn names() -> impl Strategy<Value = String> {
            let pieces = prop_oneof![
                4 => any::<char>().prop_map(String::from),
                2 => "[a-zA-Zé ]{1,4}",
                1 => prop::sample::select(vec![
                    "\u{200B}", "\u{200E}", "\u{034F}", "\u{FE0F}", "\u{180E}",
                    "\u{3164}", "\u{0301}", "\u{00A0}", "\u{3000}", "\u{FFA0}", "ﬁ", "ß",
                ])
                .prop_map(String::from),
            ];
            prop::collection::vec(pieces, 1..12).prop_map(|v| v.concat())
        }

        proptest! {
            #[test]
            fn keys_are_idempotent(name in names()) {
                if let Ok(key) = normalize_name(&name) {
                    prop_assert_eq!(normalize_name(&key).unwrap(), key.clone());
                    prop_assert!(!key.chars().any(is_ignorable));
                }
                if let Ok(key) = normalize_predicate(&name) {
                    prop_assert_eq!(normalize_predicate(&key).unwrap(), key);
                }
            }

            #[test]
            fn invisible_characters_change_no_key(
                name in "[a-zA-Z][a-zA-Zé ]{0,8}",
                at in any::<prop::sample::Index>(),
                invisible in prop::sample::select(vec![
                    '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{034F}',
                    '\u{FE0F}', '\u{180E}', '\u{3164}', '\u{2060}', '\u{FEFF}', '\u{00AD}',
                ]),
            ) {
                let chars: Vec<char> = name.chars().collect();
                let i = at.index(chars.len() + 1);
                let mut spiked: String = chars[..i].iter().collect();
                spiked.push(invisible);
                spiked.extend(&chars[i..]);
                prop_assert_eq!(normalize_name(&spiked).unwrap(), normalize_name(&name).unwrap());
            }
        }
    }
}
