//! Labels that read alike: field names or tags of one record that a person
//! cannot tell apart ("Price" and "Рrice" with a Cyrillic "Р"), and names
//! that mix alphabets. Any script is allowed in a label, so such names are
//! valid; they are pointed out to the reader instead.

use serde::{Deserialize, Serialize};
use unicode_security::MixedScript;

/// What is odd about a group of labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LookAlikeKind {
    /// Two or more names read the same (TR39 skeletons) but differ.
    ReadTheSame,
    /// One name mixes letters of different alphabets.
    MixesScripts,
}

/// Labels of one record a reader could mistake, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookAlike {
    /// The names, as stored.
    pub names: Vec<String>,
    /// What is odd about them.
    pub kind: LookAlikeKind,
}

/// Whether two names would read the same to a person: equal once case,
/// spacing, compatibility forms and confusable letters are folded (the
/// skeletons of Unicode TR39), e.g. "Commons" and "Соmmons" spelt with
/// Cyrillic letters, or "Wi1low" and "Willow".
pub fn names_look_alike(a: &str, b: &str) -> bool {
    fold_name(a) == fold_name(b)
}

fn fold_name(name: &str) -> String {
    use unicode_security::confusable_detection::skeleton;
    let once: String = skeleton(&name.to_lowercase()).collect();
    let folded: String = skeleton(&once.to_lowercase()).collect();
    // Spaces, punctuation and symbols (including blanks that are not
    // whitespace, such as U+2800) do not tell names apart; a name of
    // nothing else is compared as it folded.
    let letters: String = folded.chars().filter(|c| c.is_alphanumeric()).collect();
    if letters.is_empty() { folded } else { letters }
}

/// The groups of `names` (one record's field names, or its tags) that read
/// the same, then each name that mixes alphabets (Japanese kana with kanji,
/// or Korean hangul with hanja, count as one), in the order given.
pub fn look_alikes<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<LookAlike> {
    let names: Vec<&str> = names.into_iter().collect();
    // Groups in the order their first name came.
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut group_of: std::collections::HashMap<String, usize> = Default::default();
    for name in &names {
        let index = *group_of.entry(fold_name(name)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push((*name).to_owned());
    }
    let same = groups
        .into_iter()
        .filter(|group| group.len() > 1)
        .map(|names| LookAlike {
            names,
            kind: LookAlikeKind::ReadTheSame,
        });
    let mixed = names
        .iter()
        .filter(|name| !name.is_single_script())
        .map(|name| LookAlike {
            names: vec![(*name).to_owned()],
            kind: LookAlikeKind::MixesScripts,
        });
    same.chain(mixed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_read_the_same_or_mix_alphabets_are_pointed_out() {
        // "Рrice" starts with a Cyrillic "Р".
        let found = look_alikes(["Price", "Рrice", "Title", "Année"]);
        assert_eq!(
            found,
            vec![
                LookAlike {
                    names: vec!["Price".into(), "Рrice".into()],
                    kind: LookAlikeKind::ReadTheSame,
                },
                LookAlike {
                    names: vec!["Рrice".into()],
                    kind: LookAlikeKind::MixesScripts,
                },
            ]
        );
        // A whole name in another alphabet mixes nothing, but still reads
        // like its Latin twin ("рое" is Cyrillic throughout).
        assert_eq!(
            look_alikes(["poe", "рое"]),
            vec![LookAlike {
                names: vec!["poe".into(), "рое".into()],
                kind: LookAlikeKind::ReadTheSame,
            }]
        );
    }

    #[test]
    fn names_in_one_language_are_left_alone() {
        for names in [
            vec!["Price", "Title", "ISBN-13"],
            vec!["名前", "ひらがな名前", "カタカナ"],
            vec!["이름", "漢字이름"],
            vec!["Ёлка", "Цена"],
            vec!["Année de publication", "a_b"],
        ] {
            assert_eq!(look_alikes(names.iter().copied()), Vec::new(), "{names:?}");
        }
    }
}
