//! Which problems a trained file (a value head, a router) learned from, as its
//! `training.problems` lists them. Held-out figures that score a file leave those problems out:
//! on its own training problems a file is surer than on new ones, which would flatter it (and a
//! router reading its scores).

use serde_json::Value;

/// A problem a file was trained on: (set, idx), where a set of `None` stands for that index in
/// every set (files written before the set was recorded list bare indices).
pub type TrainedProblem = (Option<String>, usize);

/// The problems `training.problems` lists: `{set, idx}` objects or bare indices; empty where the
/// file lists none.
pub fn listed(training: &Value) -> Vec<TrainedProblem> {
    let Some(problems) = training.get("problems").and_then(Value::as_array) else {
        return Vec::new();
    };
    problems
        .iter()
        .filter_map(|p| match p {
            Value::Object(o) => Some((
                o.get("set").and_then(Value::as_str).map(str::to_owned),
                usize::try_from(o.get("idx")?.as_u64()?).ok()?,
            )),
            bare => Some((None, usize::try_from(bare.as_u64()?).ok()?)),
        })
        .collect()
}

/// `training.problems` for the problems a file is trained on.
pub fn to_json<'a>(problems: impl IntoIterator<Item = (Option<&'a str>, usize)>) -> Value {
    problems
        .into_iter()
        .map(|(set, idx)| serde_json::json!({"set": set, "idx": idx}))
        .collect()
}

/// The caveat a command prints for a file it judges without knowing what the file trained on
/// (it lists no problems), or `None`.
pub fn unlisted_caveat(name: &str, training: &Value) -> Option<String> {
    listed(training).is_empty().then(|| {
        format!(
            "{name} does not list the problems it was trained on: its rows may include some of them, which flatters it"
        )
    })
}

/// Whether problem `idx` of `set` is among `trained`.
pub fn contains(trained: &[TrainedProblem], set: Option<&str>, idx: usize) -> bool {
    trained
        .iter()
        .any(|(s, i)| *i == idx && (s.is_none() || s.as_deref() == set))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_problems_keep_their_sets_and_bare_indices_match_every_set() {
        assert!(listed(&serde_json::json!({})).is_empty());
        let written = to_json([(Some("math500"), 3), (None, 4)]);
        let trained = listed(&serde_json::json!({ "problems": written }));
        assert_eq!(trained, [(Some("math500".into()), 3), (None, 4)]);
        assert!(contains(&trained, Some("math500"), 3));
        assert!(!contains(&trained, Some("gsm8k"), 3));
        assert!(contains(&trained, Some("gsm8k"), 4) && contains(&trained, None, 4));
        let bare = listed(&serde_json::json!({"problems": [100, 102]}));
        assert_eq!(bare, [(None, 100), (None, 102)]);
        // Only a file that lists nothing gets the caveat.
        let caveat = unlisted_caveat("old", &serde_json::json!({"data": "x"})).unwrap();
        assert!(caveat.starts_with("old does not list"), "{caveat}");
        assert_eq!(
            unlisted_caveat("new", &serde_json::json!({"problems": [1]})),
            None
        );
    }
}
