//! Name patterns for event names, sources and allowed topics: exact, prefix (`Order *`) or
//! glob (`*` any run of characters, `?` one character).

use std::fmt;

/// A compiled pattern. Prefix is a glob whose only wildcard is a final `*`, kept apart
/// because it is the common case and cheap to match and to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Exact(String),
    Prefix(String),
    Glob(String),
}

impl Pattern {
    /// Reads a pattern; an empty one is refused, because it would only match empty names.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty pattern".to_owned());
        }
        let wildcards = text.chars().filter(|c| matches!(c, '*' | '?')).count();
        Ok(match text.strip_suffix('*') {
            _ if wildcards == 0 => Self::Exact(text.to_owned()),
            Some(prefix) if wildcards == 1 => Self::Prefix(prefix.to_owned()),
            _ => Self::Glob(text.to_owned()),
        })
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == text,
            Self::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Self::Glob(glob) => glob_match(glob, text),
        }
    }

    /// True when every name `other` matches is also matched by `self`. Conservative: false
    /// can also mean "not sure", so shadowing is only reported when it is certain.
    pub fn covers(&self, other: &Pattern) -> bool {
        match (self, other) {
            (_, Self::Exact(text)) => self.matches(text),
            (Self::Prefix(p), Self::Prefix(q)) => q.starts_with(p.as_str()),
            (Self::Prefix(p), Self::Glob(g)) => literal_prefix(g).starts_with(p.as_str()),
            (Self::Glob(a), Self::Glob(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(text) | Self::Glob(text) => f.write_str(text),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// The part of a glob before its first wildcard.
fn literal_prefix(glob: &str) -> &str {
    glob.find(['*', '?']).map_or(glob, |at| &glob[..at])
}

/// Wildcard matching with backtracking to the last `*`: linear in practice, never exponential.
/// Both strings are walked by byte offset, a character at a time, so a match allocates nothing
/// (it runs per event for every glob rule).
fn glob_match(glob: &str, text: &str) -> bool {
    let next = |s: &str, at: usize| s[at..].chars().next();
    let (mut g, mut t) = (0, 0);
    // Where the last `*` is in the glob, and where in the text it stops matching.
    let mut star: Option<(usize, usize)> = None;
    while let Some(c) = next(text, t) {
        match next(glob, g) {
            Some('*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(wanted) if wanted == '?' || wanted == c => {
                g += wanted.len_utf8();
                t += c.len_utf8();
            }
            _ => match star {
                Some((star_g, star_t)) => {
                    // The `*` takes one more character.
                    let taken = star_t + next(text, star_t).map_or(1, char::len_utf8);
                    (g, t) = (star_g + 1, taken);
                    star = Some((star_g, taken));
                }
                None => return false,
            },
        }
    }
    glob[g..].chars().all(|c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).expect("pattern")
    }

    #[test]
    fn kinds_are_told_apart_and_match() {
        assert_eq!(p("Order Completed"), Pattern::Exact("Order Completed".into()));
        assert_eq!(p("Order *"), Pattern::Prefix("Order ".into()));
        assert_eq!(p("*Completed"), Pattern::Glob("*Completed".into()));
        assert!(Pattern::parse("").is_err());
        assert!(p("Order Completed").matches("Order Completed"));
        assert!(!p("Order Completed").matches("Order Completed!"));
        assert!(p("Order *").matches("Order Refunded"));
        assert!(!p("Order *").matches("Orders"));
        assert!(p("*Completed").matches("Checkout Completed"));
        assert!(p("Step ?").matches("Step 3"));
        assert!(!p("Step ?").matches("Step 10"));
        assert!(p("a*b*c").matches("aXbYbZc"));
        assert!(!p("a*b*c").matches("aXbYbZ"));
        assert!(p("*").matches(""));
        assert!(p("é?*ü").matches("éàxyü"));
        assert!(!p("é?*ü").matches("éü"));
    }

    /// The matcher as it was, over collected characters: the reference for the one that walks
    /// the strings in place.
    fn by_chars(glob: &str, text: &str) -> bool {
        let (glob, text): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
        let (mut g, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match glob.get(g) {
                Some('*') => {
                    star = Some((g, t));
                    g += 1;
                }
                Some(&c) if c == '?' || c == text[t] => {
                    g += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_g, star_t)) => {
                        g = star_g + 1;
                        t = star_t + 1;
                        star = Some((star_g, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        glob[g..].iter().all(|c| *c == '*')
    }

    proptest::proptest! {
        #[test]
        fn walking_in_place_matches_as_collected_characters_did(
            glob in "[ab?*é]{0,8}",
            text in "[abé]{0,12}",
        ) {
            proptest::prop_assert_eq!(glob_match(&glob, &text), by_chars(&glob, &text), "{:?} {:?}", glob, text);
        }
    }

    #[test]
    fn coverage_is_certain_or_false() {
        assert!(p("*").covers(&p("anything *")));
        assert!(p("Order *").covers(&p("Order Completed")));
        assert!(p("Order *").covers(&p("Order C*")));
        assert!(p("Order *").covers(&p("Order ?x*")));
        assert!(p("*Completed").covers(&p("Order Completed")));
        assert!(!p("Order Completed").covers(&p("Order *")));
        assert!(!p("Order *").covers(&p("Ord*")));
        assert!(!p("*Completed").covers(&p("*ed")), "unsure, so not claimed");
    }
}
