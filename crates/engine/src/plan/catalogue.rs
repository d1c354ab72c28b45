//! The catalogues of built-in steps: every transform ([`transforms`]) and every validator
//! ([`validators`]) described once — its argument, what it takes, a one-line summary and an example
//! that runs.
//!
//! The compiler takes from here the names (the unknown-name message and its "did you mean"),
//! whether a step takes an argument and which keys that argument may have, and what a step applies
//! to (the static kinds a transform accepts, the field types a validator fits). The reference's
//! tables (docs/mapping-spec.md) are [`transforms::reference_table`] and
//! [`validators::reference_table`], and the schema's name lists are held to the catalogues, by
//! tests that also run every example. What a step does lives with it ([`super::transform`],
//! [`super::validate`]).

pub mod transforms;
pub mod validators;

/// How a step's argument is written.
#[derive(Debug, PartialEq, Eq)]
pub enum Argument {
    /// No argument: the step is a bare name (`trim`).
    None,
    /// One value (`multiply: N`): how a message writes it, and what it is.
    Value {
        /// The argument as a message writes it (`N`).
        written: &'static str,
        /// What the argument is (`a number`).
        what: &'static str,
    },
    /// A mapping of keys (`truncate: {max: N}`), in the order messages list them; `at_least_one`:
    /// every key may be left out, but not all of them.
    Keys {
        /// The keys of the mapping.
        keys: &'static [Key],
        /// Whether at least one key must be given.
        at_least_one: bool,
    },
}

/// A key of an argument mapping.
#[derive(Debug, PartialEq, Eq)]
pub struct Key {
    /// The key as a mapping writes it.
    pub name: &'static str,
    /// Whether the key must be given.
    pub required: bool,
    /// A value for it, as a message shows the argument's form (`N`, `'%Y%m%d'`).
    pub sample: &'static str,
}

/// A key that must be given.
pub(crate) const fn required(name: &'static str, sample: &'static str) -> Key {
    Key { name, required: true, sample }
}

/// A key that may be left out.
pub(crate) const fn optional(name: &'static str, sample: &'static str) -> Key {
    Key { name, required: false, sample }
}

impl Argument {
    /// The argument as a message shows it: `{max: N}`, `N`.
    pub fn usage(&self) -> String {
        match self {
            Argument::None => String::new(),
            Argument::Value { written, .. } => (*written).to_owned(),
            Argument::Keys { keys, .. } => {
                let keys: Vec<String> = keys.iter().map(|k| format!("{}: {}", k.name, k.sample)).collect();
                format!("{{{}}}", keys.join(", "))
            }
        }
    }

    /// The keys an argument mapping may have, in order (none for another argument).
    pub fn keys(&self) -> Vec<&'static str> {
        match self {
            Argument::Keys { keys, .. } => keys.iter().map(|k| k.name).collect(),
            Argument::None | Argument::Value { .. } => Vec::new(),
        }
    }

    /// The reference's cell: `—`, `` `N`, a number ``, `` `{format, zone?}` `` (`?` after a key
    /// that may be left out).
    pub fn reference(&self) -> String {
        match self {
            Argument::None => "—".to_owned(),
            Argument::Value { written, what } => format!("`{written}`, {what}"),
            Argument::Keys { keys, at_least_one } => {
                let keys: Vec<String> =
                    keys.iter().map(|k| format!("{}{}", k.name, if k.required { "" } else { "?" })).collect();
                let least = if *at_least_one { ", at least one" } else { "" };
                format!("`{{{}}}`{least}", keys.join(", "))
            }
        }
    }
}

/// Text as inline code in a table cell: a `|` would end the cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('|', "\\|"))
}

/// A catalogue example's step, as the loader reads it from a step list.
#[cfg(test)]
pub(crate) fn example_step(text: &str) -> crate::spec::StepSpec {
    use crate::diagnostic::Spanned;
    use crate::spec::NodeKind;
    let node = crate::spec::load_yaml(text, &mut vec![]).expect("an example step is YAML");
    match node.kind {
        NodeKind::Str(name) => crate::spec::StepSpec { name: Spanned::new(name, node.pos), arg: None, when: None },
        NodeKind::Map(mut entries) if entries.len() == 1 => {
            let (name, arg) = entries.remove(0);
            crate::spec::StepSpec { name, arg: Some(arg), when: None }
        }
        _ => panic!("an example step is a name or a one-entry mapping: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argument_reads_as_messages_and_the_reference_write_it() {
        const FORMAT: &[Key] = &[required("format", "'%Y'"), optional("zone", "UTC")];
        const BOUNDS: &[Key] = &[optional("min", "N"), optional("max", "N")];
        let keys = Argument::Keys { keys: FORMAT, at_least_one: false };
        assert_eq!(keys.usage(), "{format: '%Y', zone: UTC}");
        assert_eq!(keys.reference(), "`{format, zone?}`");
        assert_eq!(keys.keys(), ["format", "zone"]);
        let bounds = Argument::Keys { keys: BOUNDS, at_least_one: true };
        assert_eq!(bounds.reference(), "`{min?, max?}`, at least one");
        let value = Argument::Value { written: "N", what: "a number" };
        assert_eq!((value.usage().as_str(), value.reference().as_str()), ("N", "`N`, a number"));
        assert_eq!(Argument::None.reference(), "—");
        assert_eq!(code("a|b"), "`a\\|b`");
    }

    #[test]
    fn names_are_unique_and_argument_mappings_are_well_formed() {
        let kinds: [Vec<(&str, &Argument)>; 2] = [
            transforms::CATALOGUE.iter().map(|t| (t.name, &t.argument)).collect(),
            validators::CATALOGUE.iter().map(|v| (v.name, &v.argument)).collect(),
        ];
        for steps in kinds {
            let mut names: Vec<&str> = steps.iter().map(|(n, _)| *n).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), steps.len(), "a name is described twice");
            for (name, argument) in steps {
                if let Argument::Keys { keys, at_least_one } = argument {
                    assert!(!keys.is_empty(), "`{name}` has an empty argument mapping");
                    assert!(!(*at_least_one && keys.iter().any(|k| k.required)), "`{name}`: at least one of what?");
                }
            }
        }
    }
}
