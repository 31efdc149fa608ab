//! Finding the final answer in a solution: `\boxed{}`/`\fbox{}` (brace-matched), "final answer
//! is", "the answer is", GSM8K `####`, multiple-choice letters, last math segment or number.

use std::sync::LazyLock;

use regex::Regex;

use crate::normalize::preclean;

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\d+(?:[.,]\d+)*(?:/\d+)?|\.\d+)(?:\s?%)?").expect("regex"));
static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z]{3,}").expect("regex"));
static CMD_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\\[A-Za-z]+").expect("regex"));
/// A command with a one-word argument: `\begin{pmatrix}`, `\operatorname{lcm}`, `\text{ cm}`.
static CMD_ARG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\[A-Za-z]+\s*\{\s*[A-Za-z]*\s*\}").expect("regex"));
/// An approximation sign or word just before a number: the number is a rounded value.
static APPROX_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:≈|~|\\approx|approximately|approx\.?|about|roughly|nearly|around|environ|约)\s*[:=]?\s*[-+]?$")
        .expect("regex")
});

/// Markers after which a final answer follows, strongest first. Matched case-insensitively.
const FINAL_MARKERS: &[&str] = &["final answer is", "final answer:", "final answer"];
const ANSWER_MARKERS: &[&str] = &[
    "the answer is",
    "answer is",
    "answer:",
    "réponse est",
    "réponse :",
    "réponse:",
    "答案是",
    "答案为",
    "答案：",
    "答：",
    "答えは",
    "答え：",
    "réponse finale",
    "answer =",
    "antwort:",
    "antwort ist",
    "respuesta es",
    "respuesta:",
    "risposta:",
    "resposta:",
    "ответ:",
    "ответ —",
];

/// A `\boxed{...}` occurrence: byte range of the whole command and its content.
struct Boxed {
    start: usize,
    end: usize,
    content: String,
}

/// All `\boxed{}` / `\fbox{}` contents, brace-matched (nested braces allowed), in order.
fn find_boxed(s: &str) -> Vec<Boxed> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = s[i..].find('\\') {
        let p = i + off;
        let rest = &s[p + 1..];
        let name_len = if rest.starts_with("boxed") {
            5
        } else if rest.starts_with("fbox") {
            4
        } else {
            i = p + 1;
            continue;
        };
        let mut j = p + 1 + name_len;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b'{' {
            let mut depth = 0usize;
            let mut k = j;
            let mut close = None;
            while k < bytes.len() {
                match bytes[k] {
                    b'\\' => {
                        k += 2;
                        continue;
                    }
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(k);
                            break;
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            match close {
                Some(c) => {
                    out.push(Boxed {
                        start: p,
                        end: c + 1,
                        content: s[j + 1..c].to_string(),
                    });
                    i = c + 1;
                }
                None => break,
            }
        } else if j > p + 1 + name_len && j < bytes.len() {
            // `\boxed 5`: a single token after a space.
            let k = s[j..]
                .find(|c: char| c.is_whitespace() || c == '$')
                .map_or(s.len(), |x| j + x);
            out.push(Boxed {
                start: p,
                end: k,
                content: s[j..k].to_string(),
            });
            i = k.max(p + 1);
        } else {
            i = p + 1;
        }
    }
    out
}

const CONNECTORS: &[&str] = &["and", "or", "et", "und", "y", "text", "quad", "qquad"];

/// Text between two boxes that joins them into one multi-part answer: punctuation, math
/// delimiters, connectives, and at most one other word.
fn joins_boxes(gap: &str) -> bool {
    if gap.len() > 60 {
        return false;
    }
    let mut other = 0;
    for w in gap.split(|c: char| !c.is_alphanumeric()) {
        if w.is_empty() || CONNECTORS.contains(&w.to_lowercase().as_str()) {
            continue;
        }
        other += 1;
    }
    other <= 1
}

/// Does the text between two answer parts contain a connective word ("and", "or", …)?
fn has_connective_word(gap: &str) -> bool {
    gap.split(|c: char| !c.is_alphanumeric()).any(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "and" | "or" | "et" | "ou" | "und" | "oder" | "y" | "o"
        )
    })
}

/// The last boxed answer, joined with immediately preceding boxes (`\boxed{1}, \boxed{2}`).
///
/// Parts separated by a connective word (`\boxed{1} and \boxed{-2}`) are joined with "and", so
/// that they compare as alternatives in any order; parts separated by punctuation only keep
/// the comma, and with it their order.
fn boxed_answer(s: &str) -> Option<String> {
    let boxes = find_boxed(s);
    let last = boxes.last()?;
    let mut parts = vec![last.content.clone()];
    let mut k = boxes.len() - 1;
    let mut words = false;
    while k > 0 && joins_boxes(&s[boxes[k - 1].end..boxes[k].start]) {
        words |= has_connective_word(&s[boxes[k - 1].end..boxes[k].start]);
        k -= 1;
        parts.push(boxes[k].content.clone());
    }
    parts.reverse();
    // The same answer boxed again (a check, a restatement) is one answer, not a list.
    if parts.iter().all(|p| p.trim() == parts[0].trim()) {
        return Some(parts.swap_remove(0));
    }
    Some(parts.join(if words { " and " } else { ", " }))
}

/// The contents of the last `n` boxes of a solution, joined with ", ": the parts of a
/// multi-part answer boxed one by one with prose between them ("(a) … $\boxed{3}$. (b) … is
/// $\boxed{5}$"). `None` when there are fewer than `n` boxes.
pub fn last_boxes(text: &str, n: usize) -> Option<String> {
    let s = preclean(tail(text));
    let boxes = find_boxed(&s);
    if n < 2 || boxes.len() < n {
        return None;
    }
    let parts: Vec<&str> = boxes[boxes.len() - n..]
        .iter()
        .map(|b| b.content.as_str())
        .collect();
    Some(parts.join(", "))
}

/// Math segments `$...$`, `$$...$$`, `\(...\)` (single line), `\[...\]`: (start, end, content).
fn math_segments(s: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && (i == 0 || b[i - 1] != b'\\') && is_currency(s, i) {
            i += 1;
            continue;
        }
        if b[i] == b'$' && (i == 0 || b[i - 1] != b'\\') {
            let dbl = i + 1 < b.len() && b[i + 1] == b'$';
            let open = if dbl { 2 } else { 1 };
            let pat = if dbl { "$$" } else { "$" };
            if let Some(ce) = find_unescaped(s, i + open, pat) {
                let cs = i + open;
                out.push((i, ce + open, s[cs..ce].to_string()));
                i = ce + open;
                continue;
            }
            i += open;
            continue;
        }
        if b[i] == b'\\' && i + 1 < b.len() && (b[i + 1] == b'(' || b[i + 1] == b'[') {
            let close = if b[i + 1] == b'(' { "\\)" } else { "\\]" };
            if let Some(off) = s[i + 2..].find(close) {
                let content = &s[i + 2..i + 2 + off];
                if !(close == "\\)" && content.contains('\n')) {
                    out.push((i, i + 2 + off + 2, content.to_string()));
                }
                i = i + 2 + off + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Is the `$` at byte `i` a currency sign rather than a math delimiter? It is when a digit
/// follows it and the next `$` either does not exist, or lies past prose: a word of three
/// letters or more before a `$` that is itself followed by a digit ("paid $5 for the pen and $3
/// for …"), or a line break followed by such a word ("costs $80,000.\nThe price is $", a
/// solution cut off in mid-sentence). `$5$`, `$x = 5$` and `$1 +\n 2$` stay math.
fn is_currency(s: &str, i: usize) -> bool {
    let b = s.as_bytes();
    if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let has_word = |text: &str| {
        text.split(|c: char| !c.is_alphabetic())
            .any(|w| w.chars().count() >= 3)
    };
    match find_unescaped(s, i + 1, "$") {
        None => true,
        Some(j) => {
            let between = &s[i + 1..j];
            let next_is_amount = b.get(j + 1).is_some_and(u8::is_ascii_digit);
            let prose_line = between
                .split_once('\n')
                .is_some_and(|(_, after)| has_word(after) && !after.contains('\\'));
            next_is_amount && has_word(between) || prose_line
        }
    }
}

/// Next `pat` at or after `from` that is not preceded by a backslash (`\$` is a dollar sign).
fn find_unescaped(s: &str, from: usize, pat: &str) -> Option<usize> {
    let mut k = from;
    while let Some(off) = s.get(k..)?.find(pat) {
        let p = k + off;
        if p > 0 && s.as_bytes()[p - 1] == b'\\' {
            k = p + 1;
            continue;
        }
        return Some(p);
    }
    None
}

/// A time of day or a ratio in prose: `2:30 PM`, `14:30:00`, `3:10`.
static CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AaPp]\.?\s*[Mm]\b\.?)?").expect("regex")
});

/// The time of day or ratio in `s` that the last number (bytes `start..end`) belongs to: "the
/// train leaves at 2:30 PM" answers `2:30 PM`, not 30, and "the ratio is 3:10" answers `3:10`.
fn time_around(s: &str, start: usize, end: usize) -> Option<String> {
    CLOCK
        .find_iter(s)
        .find(|m| m.start() <= start && m.end() >= end)
        .map(|m| m.as_str().trim_end_matches('.').to_string())
}

/// Last number in plain text (`1,000.99`, `2,74`, `28 %`), with a sign when it is not a
/// subtraction. Returns (start, end, text).
///
/// A digit run that directly follows a Latin letter belongs to a name (`AB2C`, `H2O`, `x2`)
/// and is never taken as a number; a letter after the digits (`15cm`) is a unit and is fine.
fn last_number(s: &str) -> Option<(usize, usize, String)> {
    let m = NUMBER
        .find_iter(s)
        .filter(|m| !s[..m.start()].ends_with(|c: char| c.is_ascii_alphabetic()))
        .last()?;
    let mut start = m.start();
    let prev = s[..start].trim_end_matches(' ');
    if let Some(before) = prev.strip_suffix('-') {
        let before = before.trim_end();
        if !before.ends_with(|c: char| c.is_alphanumeric() || c == ')') {
            start = prev.len() - 1;
        }
    }
    let text = s[start..m.end()].replace(' ', "");
    Some((start, m.end(), text))
}

fn find_last_ci(hay_lower: &str, markers: &[&str]) -> Option<usize> {
    markers
        .iter()
        .filter_map(|m| hay_lower.rfind(m).map(|p| p + m.len()))
        .max()
}

/// Answer text following a marker: up to the end of the sentence or line.
fn segment_after(s: &str) -> Option<String> {
    let t = s.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '：' | '*'));
    let t = t.trim_start_matches(|c: char| c.is_whitespace() || c == '*');
    if t.is_empty() {
        return None;
    }
    if let Some(b) = boxed_answer(t) {
        let first_box = t.find("\\boxed").or_else(|| t.find("\\fbox")).unwrap_or(0);
        if first_box < 200 {
            return Some(b);
        }
    }
    if t.starts_with('$') || t.starts_with("\\(") || t.starts_with("\\[") {
        let maths = math_segments(t);
        if !maths.is_empty() {
            return Some(solution_run(t, &maths, 0));
        }
    }
    // Sentence end: newline, or a period/！ followed by space or end.
    let mut end = t.len();
    let b = t.as_bytes();
    let mut dollars = 0usize;
    for (i, ch) in t.char_indices() {
        if ch == '\n' {
            end = i;
            break;
        }
        if ch == '$' {
            dollars += 1;
        }
        // A period inside $...$ does not end the sentence.
        if (ch == '.' || ch == '。')
            && (i + ch.len_utf8() >= b.len() || b[i + ch.len_utf8()].is_ascii_whitespace())
            && dollars.is_multiple_of(2)
        {
            end = i;
            break;
        }
    }
    let seg = t[..end].trim();
    // A full-width comma or semicolon ends the answer clause in Chinese and Japanese prose:
    // "答案是 12 元，不是 18 元" answers 12.
    let seg = match seg.find(['，', '；']) {
        Some(p) if !seg[..p].contains('$') => seg[..p].trim(),
        _ => seg,
    };
    let seg = match seg.rfind(" is ") {
        Some(p) => seg[p + 4..].trim(),
        None => seg,
    };
    if seg.is_empty() {
        return None;
    }
    let maths = math_segments(seg);
    if !maths.is_empty() {
        return Some(solution_run(seg, &maths, maths.len() - 1));
    }
    if looks_like_answer(seg) {
        return Some(seg.to_string());
    }
    last_number(seg)
        .map(|(_, _, n)| n)
        .or_else(|| Some(seg.to_string()))
}

/// Short, mostly symbolic text (not prose). Words that are LaTeX command arguments
/// (`\begin{pmatrix}`, `\operatorname{lcm}`, `\text{cm}`) are markup, not prose.
fn looks_like_answer(s: &str) -> bool {
    if s.len() <= 600 && s.contains('\\') {
        let stripped = CMD_ARG.replace_all(s, "");
        if stripped.len() < s.len() {
            return stripped.chars().count() <= 200 && looks_like_answer(&stripped);
        }
    }
    const ALLOWED: &[&str] = &["pct", "percent", "and", "sqrt", "frac", "pi", "infty"];
    let prose_script = s
        .chars()
        .any(|c| c.is_alphabetic() && !c.is_ascii() && !('\u{370}'..='\u{3ff}').contains(&c));
    // Command names (`\left`, `\infty`) are markup: only the rest counts towards the length.
    let markup: usize = CMD_NAME.find_iter(s).map(|m| m.as_str().len()).sum();
    s.chars().count() - markup.min(s.chars().count()) <= 40
        && !prose_script
        && WORD
            .find_iter(s)
            .filter(|m| {
                !s[..m.start()].ends_with('\\')
                    && !ALLOWED.contains(&m.as_str().to_lowercase().as_str())
            })
            .count()
            == 0
}

/// Only the last `MAX_TEXT` bytes of a solution are searched (answers come last).
const MAX_TEXT: usize = 64 * 1024;

fn tail(text: &str) -> &str {
    if text.len() <= MAX_TEXT {
        return text;
    }
    let mut start = text.len() - MAX_TEXT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Extract the final answer from a solution text (or return a bare answer as is).
pub fn extract_answer(text: &str) -> Option<String> {
    let s = preclean(tail(text));
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(b) = boxed_answer(s) {
        return Some(b);
    }
    let lower = s.to_lowercase();
    if let Some(p) = find_last_ci(&lower, FINAL_MARKERS)
        && let Some(a) = s.get(p..).and_then(segment_after)
    {
        return Some(a);
    }
    if let Some(p) = s.rfind("####") {
        let rest = s[p + 4..].trim();
        let line = rest.lines().next().unwrap_or("").trim();
        if !line.is_empty() {
            return Some(line.replace(',', ""));
        }
    }
    if let Some(p) = find_last_ci(&lower, ANSWER_MARKERS)
        && let Some(a) = s.get(p..).and_then(segment_after)
    {
        return Some(a);
    }
    let maths = math_segments(s);
    if maths.is_empty() && looks_like_answer(s) {
        return Some(s.to_string());
    }
    // Whichever comes last: a math segment, or a number in the prose after it; but a number
    // announced as an approximation ("$2\sqrt3$, approximately 3.46") defers to the exact math.
    let last_math = maths.last();
    let tail_from = last_math.map_or(0, |m| m.1);
    if let Some((start, end, n)) = last_number(&s[tail_from..])
        && (last_math.is_none() || !s[tail_from..].trim().is_empty())
        && (last_math.is_none() || !APPROX_BEFORE.is_match(&s[tail_from..tail_from + start]))
    {
        return Some(time_around(&s[tail_from..], start, end).unwrap_or(n));
    }
    if let Some((_, _, c)) = last_math {
        let run = solution_run(s, &maths, maths.len() - 1);
        return Some(if run.len() > c.len() {
            run
        } else {
            final_value(c)
        });
    }
    // A short word answer (`Sunday`, `Evelyn`).
    (s.chars().count() <= 60 && !s.contains('\n')).then(|| s.to_string())
}

/// Text between two math segments that lists them as one answer: commas and connective words
/// only (`$x = 1$ and $x = 3$`, `$1$, $2$, or $3$`). Any other word ("so", "then", "we get")
/// means the segments are steps of the argument, not parts of the answer.
fn joins_solutions(gap: &str) -> bool {
    gap.len() <= 24
        && gap.split(|c: char| !c.is_alphanumeric()).all(|w| {
            w.is_empty()
                || matches!(
                    w.to_lowercase().as_str(),
                    "and" | "or" | "et" | "ou" | "und" | "oder" | "y" | "o"
                )
        })
        && !gap.contains(['.', '\n', ';'])
}

/// The math segment `i` with the neighbouring segments joined to it by [`joins_solutions`], as
/// one answer (`x = 1 and x = 3`); joined with "and" so the parts compare as alternatives.
fn solution_run(s: &str, maths: &[(usize, usize, String)], i: usize) -> String {
    let (mut lo, mut hi) = (i, i);
    while lo > 0 && joins_solutions(&s[maths[lo - 1].1..maths[lo].0]) {
        lo -= 1;
    }
    while hi + 1 < maths.len() && joins_solutions(&s[maths[hi].1..maths[hi + 1].0]) {
        hi += 1;
    }
    if lo == hi {
        return maths[i].2.clone();
    }
    let parts: Vec<&str> = maths[lo..=hi].iter().map(|m| m.2.as_str()).collect();
    parts.join(" and ")
}

/// The result of a computation shown as the last math of a solution: `\pi r^2 h = 12\pi`
/// gives `12\pi`.
///
/// Only for a chain of `=` whose last part is a constant other than 0 and whose first part has
/// a variable and is a single term (`\pi r^2 h`) or a sum of unknowns other than coordinates
/// (`100m + n = 305`), or with intermediate steps (`A = \pi r^2 = 4\pi`): an equation with a
/// sum of `x`, `y`, `z` terms on the left (`x + y + z = 6`, a plane) keeps its form, so does one
/// equal to 0 (`2x + 4y - 3 = 0`), and a definition with a variable on the right
/// (`f(x) = 2x + 1`) is kept whole. Boxed and marked answers never go through this: it applies to unmarked prose only.
fn final_value(seg: &str) -> String {
    // `x = \frac13 \approx 0.33`: the approximation is an annotation, not the value.
    let exact = match seg.find("\\approx").or_else(|| seg.find('≈')) {
        Some(p) if seg[..p].contains('=') => &seg[..p],
        _ => seg,
    };
    let parts = split_top_level_eq(exact);
    if parts.len() >= 2 {
        let last = parts[parts.len() - 1].trim();
        if let (Ok(first), Ok(value)) = (crate::parse::parse(parts[0]), crate::parse::parse(last)) {
            let (mut fs, mut vs) = (Default::default(), Default::default());
            crate::equiv::free_syms(&first, &mut fs);
            crate::equiv::free_syms(&value, &mut vs);
            let zero = crate::eval::eval(&value, &Default::default()).is_ok_and(|v| v.is_zero());
            // `x + y + z = 6` is an equation (a plane), not a computation of 6: a sum on the
            // left keeps the equation unless intermediate steps show it is a computation.
            // Only coordinates make a curve: `100m + n = 305` computes 305.
            let coordinates = fs.iter().all(|v| matches!(v.as_str(), "x" | "y" | "z"));
            let equation_like = coordinates
                && matches!(
                    first,
                    crate::parse::Node::Add(_) | crate::parse::Node::Pm(..)
                );
            if !fs.is_empty() && vs.is_empty() && !zero && (parts.len() >= 3 || !equation_like) {
                return last.to_string();
            }
        }
    }
    seg.to_string()
}

/// `seg` split at `=` signs outside braces and brackets (`\le`, `\ne` are not `=`).
fn split_top_level_eq(seg: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in seg.char_indices() {
        match c {
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            '=' if depth == 0 => {
                out.push(&seg[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&seg[start..]);
    out
}

/// Gold answers may be bare, wrapped in `$...$`/`\boxed{}`, or full solutions.
pub fn extract_gold(text: &str) -> String {
    let s = preclean(tail(text));
    let t = s.trim();
    if let Some(b) = boxed_answer(t) {
        return b;
    }
    let lower = t.to_lowercase();
    if (find_last_ci(&lower, FINAL_MARKERS).is_some()
        || find_last_ci(&lower, ANSWER_MARKERS).is_some()
        || t.contains("####"))
        && let Some(a) = extract_answer(t)
    {
        return a;
    }
    let maths = math_segments(t);
    if !maths.is_empty() {
        // Several math pieces joined by connectives form one multi-part answer.
        let mut parts = vec![maths[maths.len() - 1].2.clone()];
        let mut k = maths.len() - 1;
        while k > 0 && joins_boxes(&t[maths[k - 1].1..maths[k].0]) {
            k -= 1;
            parts.push(maths[k].2.clone());
        }
        let outside: usize = t.len() - maths.iter().map(|m| m.1 - m.0).sum::<usize>();
        if k == 0 || outside < 40 {
            parts.reverse();
            return parts.join(", ");
        }
        return maths[maths.len() - 1].2.clone();
    }
    t.to_string()
}

/// A multiple-choice letter (A–E) in a gold answer like `B`, `(A) Cecile`, `C Cecile`.
pub fn gold_choice(gold: &str) -> Option<char> {
    let mut t = gold.trim();
    // Unwrap `\text{...}`, `\textbf{...}`, `\mathrm{...}`.
    while let Some(inner) = t.strip_prefix('\\').and_then(|x| {
        let x = x.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        x.strip_prefix('{').and_then(|y| y.strip_suffix('}'))
    }) {
        t = inner.trim();
    }
    let mut cs = t.chars();
    let (c0, c1, c2) = (cs.next(), cs.next(), cs.next());
    match (c0, c1, c2) {
        (Some(c), None, _) if ('A'..='E').contains(&c) => Some(c),
        (Some('('), Some(c), Some(')')) if ('A'..='E').contains(&c) => Some(c),
        (Some(c), Some(d), _) if ('A'..='E').contains(&c) && (d == ')' || d == '.' || d == ' ') => {
            // "C Cecile" / "C. Cecile": a letter followed by option text.
            let rest = t[2..].trim_start();
            rest.starts_with(|x: char| x.is_alphabetic()).then_some(c)
        }
        _ => None,
    }
}

fn standalone_letter(s: &str, from_end: bool) -> Option<char> {
    let cs: Vec<char> = s.chars().collect();
    let ok = |i: usize| {
        let c = cs[i];
        ('A'..='E').contains(&c)
            && (i == 0
                || !cs[i - 1].is_ascii_alphanumeric() && cs[i - 1] != '\\' && cs[i - 1] != '\'')
            && (i + 1 == cs.len() || !cs[i + 1].is_ascii_alphanumeric())
    };
    if from_end {
        (0..cs.len()).rev().find(|&i| ok(i)).map(|i| cs[i])
    } else {
        (0..cs.len()).find(|&i| ok(i)).map(|i| cs[i])
    }
}

/// Choice letter chosen in a solution text.
pub fn extract_choice(text: &str) -> Option<char> {
    let s = preclean(tail(text));
    if let Some(b) = boxed_answer(&s)
        && let Some(c) = standalone_letter(&b, false)
    {
        return Some(c);
    }
    let lower = s.to_lowercase();
    let markers = [FINAL_MARKERS, ANSWER_MARKERS].concat();
    if let Some(p) = find_last_ci(&lower, &markers)
        && let Some(rest) = s.get(p..)
    {
        let sentence: String = rest.chars().take(60).collect();
        let sentence = sentence
            .split(['\n', '.', ','])
            .find(|x| !x.trim().is_empty())
            .unwrap_or("");
        if let Some(c) = standalone_letter(sentence, false) {
            return Some(c);
        }
    }
    let t = s.trim_start();
    let mut cs = t.chars();
    if let (Some(c), next) = (cs.next(), cs.next())
        && ('A'..='E').contains(&c)
        && next.is_none_or(|n| !n.is_ascii_alphabetic())
    {
        return Some(c);
    }
    standalone_letter(&s, true)
}

/// Content of the last `\boxed{}` / `\fbox{}` in `s`.
pub fn find_last_boxed(s: &str) -> Option<String> {
    find_boxed(s).pop().map(|b| b.content)
}
