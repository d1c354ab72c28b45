//! Where in a record a reader stopped, as decode errors show it: `order.items[2].sku`. A recursive
//! type's path can be hundreds of steps deep: only its two ends are shown.

/// One step into a record.
pub(crate) enum Step<'a> {
    Field(&'a str),
    Index(u64),
    Key(&'a str),
}

/// Steps shown at each end of a long path.
const SHOWN: usize = 8;

/// The path text of `steps`, its middle left out past [`SHOWN`] steps at each end.
pub(crate) fn text<'a>(steps: impl ExactSizeIterator<Item = Step<'a>>) -> String {
    let mut path = String::new();
    let parts = steps.len();
    for (i, step) in steps.enumerate() {
        if parts > 2 * SHOWN && (SHOWN..parts - SHOWN).contains(&i) {
            if i == SHOWN {
                path.push_str(&format!(".…({} more)…", parts - 2 * SHOWN));
            }
            continue;
        }
        match step {
            Step::Field(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
            Step::Key(k) => path.push_str(&format!("[{k:?}]")),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_path_shows_its_ends() {
        let short = [Step::Field("order"), Step::Field("items"), Step::Index(2), Step::Key("k")];
        assert_eq!(text(short.into_iter()), r#"order.items[2]["k"]"#);
        let long = text((0..40).map(|_| Step::Field("next")));
        assert!(long.starts_with("next.next") && long.contains(".…(24 more)…") && long.len() < 200, "{long}");
    }
}
