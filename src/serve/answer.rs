//! The text a client is sent as steps are decided. Stop strings cut it, and while stop strings
//! are set, enough of its end is held back that one split across two steps is never half sent:
//! the streamed pieces always add up to the text a non-streamed answer carries.

/// An answer being assembled from decided steps.
#[derive(Debug, Clone)]
pub struct Answer {
    text: String,
    sent: usize,
    stops: Vec<String>,
    /// Bytes held back from the end: one less than the longest stop string.
    hold: usize,
    stopped: bool,
}

impl Answer {
    pub fn new(stops: Vec<String>) -> Answer {
        let hold = stops
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .saturating_sub(1);
        Answer {
            text: String::new(),
            sent: 0,
            stops,
            hold,
            stopped: false,
        }
    }

    /// Adds a decided step and returns the text that can be sent now. After a stop string
    /// matched, steps are ignored.
    pub fn push(&mut self, step: &str) -> String {
        if self.stopped {
            return String::new();
        }
        // A match can only start where the held-back tail begins.
        let from = floor_boundary(&self.text, self.sent);
        self.text.push_str(step);
        let found = self
            .stops
            .iter()
            .filter_map(|s| self.text[from..].find(s.as_str()).map(|at| from + at))
            .min();
        let until = match found {
            Some(at) => {
                self.text.truncate(at);
                self.stopped = true;
                at
            }
            None => {
                floor_boundary(&self.text, self.text.len().saturating_sub(self.hold)).max(self.sent)
            }
        };
        self.take(until)
    }

    /// The rest of the text, once no step will follow.
    pub fn finish(&mut self) -> String {
        self.take(self.text.len())
    }

    /// Whether a stop string ended the answer.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The whole answer so far, sent or not.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn take(&mut self, until: usize) -> String {
        let piece = self.text[self.sent..until].to_owned();
        self.sent = until;
        piece
    }
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(stops: &[&str], steps: &[&str]) -> (Vec<String>, Answer) {
        let mut a = Answer::new(stops.iter().map(|s| s.to_string()).collect());
        let mut pieces: Vec<String> = steps.iter().map(|s| a.push(s)).collect();
        pieces.push(a.finish());
        (pieces, a)
    }

    #[test]
    fn without_stop_strings_each_step_is_sent_whole_as_it_comes() {
        let (pieces, a) = stream(&[], &["One.\n\n", "Two.\n\n", "Three."]);
        assert_eq!(pieces, ["One.\n\n", "Two.\n\n", "Three.", ""]);
        assert!(!a.stopped());
    }

    #[test]
    fn a_stop_string_cuts_the_text_before_it_and_ignores_later_steps() {
        let (pieces, a) = stream(&["END"], &["One.\n\n", "Two END three\n\n", "Four."]);
        assert_eq!(pieces.concat(), "One.\n\nTwo ");
        assert_eq!(a.text(), "One.\n\nTwo ");
        assert!(a.stopped());
    }

    #[test]
    fn a_stop_string_split_across_two_steps_is_never_half_sent() {
        let (pieces, a) = stream(&["\n\nAnswer"], &["One.\n", "\nAnswer: 4"]);
        assert_eq!(pieces.concat(), "One.");
        assert!(pieces.iter().all(|p| !p.contains('\n')));
        assert!(a.stopped());
    }

    #[test]
    fn held_back_text_is_sent_at_the_end_and_never_splits_a_character() {
        let (pieces, a) = stream(&["zzzz"], &["é", "ü", "ß"]);
        assert_eq!(pieces.concat(), "éüß");
        assert!(!a.stopped());
        assert!(
            pieces
                .iter()
                .all(|p| std::str::from_utf8(p.as_bytes()).is_ok())
        );
    }
}
