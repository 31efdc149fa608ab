//! Checks the arithmetic a step writes out: every `expression = result` whose two sides are plain
//! numbers and the four operations is evaluated, and a result that does not match is an error.
//!
//! Small drafts often get GSM8K problems wrong by miscalculating, and a wrong `=` is something a
//! router can see without the target: on the default pair's 1,506 training records, only the
//! target's step leads to the gold answer on 40% of the 53 draft steps this flags, against 9% of
//! the others (`train-router` prints the figure; docs/router.md).
//!
//! The evaluator is written here rather than taken from an expression crate because what counts as
//! a checkable expression is the point: no variables, no implicit multiplication, no functions, and
//! LaTeX (`\times`, `\frac{a}{b}`, `\$`, `\text{…}`) read as the model writes it. The grader's
//! LaTeX parser (`arbitrage_grader::parse`) reads answers, where `2(3 + 4)` and `3x` are products
//! to accept; here they are not computations written out. The well-kept general evaluators also
//! accept far more, and one is AGPL.

/// What [`check`] found in a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Check {
    /// Equations with a computation on the left and a number or computation on the right.
    pub checked: u32,
    /// Of those, the ones whose sides differ by more than rounding.
    pub errors: u32,
}

/// Relative and absolute differences up to which two sides are taken as equal: models round
/// (`121 / 3 = 40.33`, `7 / 3 = 2.3`), and a rounded cent is not an error.
const REL_TOLERANCE: f64 = 0.011;
const ABS_TOLERANCE: f64 = 0.011;
/// Deeper nesting than this is not arithmetic a model writes; refusing it bounds the recursion.
const MAX_DEPTH: usize = 32;

/// Checks every `=` in `text` whose left side is a computation.
pub fn check(text: &str) -> Check {
    let text = normalise(text);
    let parts: Vec<&str> = text.split('=').collect();
    let mut out = Check::default();
    for pair in parts.windows(2) {
        let (Some(left), Some(right)) = (side(pair[0], Side::Left), side(pair[1], Side::Right))
        else {
            continue;
        };
        // Computations are written left to right; `2 feet = 2 × 12 inches` is a conversion.
        if !left.has_operator {
            continue;
        }
        out.checked += 1;
        let diff = (left.value - right.value).abs();
        let scale = left.value.abs().max(right.value.abs());
        if diff > ABS_TOLERANCE && diff > REL_TOLERANCE * scale {
            out.errors += 1;
        }
    }
    out
}

/// Rewrites the LaTeX and typography models use for arithmetic into `0-9 . + - * / ( )`.
fn normalise(text: &str) -> String {
    let mut s = text.to_owned();
    for (from, to) in [
        ("\\times", "*"),
        ("\\cdot", "*"),
        ("\\ast", "*"),
        ("\\div", "/"),
        ("×", "*"),
        ("÷", "/"),
        ("−", "-"),
        ("\\left", ""),
        ("\\right", ""),
        ("\\$", ""),
        ("$", ""),
        ("\\,", ""),
        ("\\!", ""),
        ("\\;", ""),
        ("\\%", ""),
        ("%", ""),
    ] {
        s = s.replace(from, to);
    }
    // Units and words are not arithmetic.
    for command in ["\\text", "\\mathrm", "\\textbf", "\\mbox"] {
        s = rewrite_command(&s, command, 1, |_| " ".to_owned());
    }
    for command in ["\\dfrac", "\\tfrac", "\\frac"] {
        s = rewrite_command(&s, command, 2, |a| format!("(({})/({}))", a[0], a[1]));
    }
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(chars.len());
    for (i, &c) in chars.iter().enumerate() {
        let prev_digit = i > 0 && chars[i - 1].is_ascii_digit();
        match c {
            // Thousands separators: `1,200` but not `3, 4` or `1,2345`.
            ',' if prev_digit && thousands_group(&chars[i + 1..]) => {}
            '{' => out.push('('),
            '}' => out.push(')'),
            'x' if digit_first(chars[..i].iter().rev()) && digit_first(chars[i + 1..].iter()) => {
                out.push('*');
            }
            _ => out.push(c),
        }
    }
    out
}

/// `rest` starts with exactly three digits.
fn thousands_group(rest: &[char]) -> bool {
    rest.len() >= 3
        && rest[..3].iter().all(char::is_ascii_digit)
        && !rest.get(3).is_some_and(char::is_ascii_digit)
}

/// The first character other than a space is a digit.
fn digit_first<'a>(mut chars: impl Iterator<Item = &'a char>) -> bool {
    chars.find(|c| **c != ' ').is_some_and(char::is_ascii_digit)
}

/// Rewrites each `\command{a}{b}…` whose `arity` arguments are brace-free into `replace(&[a, b,
/// …])`; any other use of the command is left as written.
fn rewrite_command(
    s: &str,
    command: &str,
    arity: usize,
    replace: impl Fn(&[&str]) -> String,
) -> String {
    let open = format!("{command}{{");
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(&open) {
        let after = &rest[at + open.len()..];
        let mut args = Vec::with_capacity(arity);
        let mut tail = Some(after);
        for i in 0..arity {
            tail = tail
                .and_then(|t| if i == 0 { Some(t) } else { t.strip_prefix('{') })
                .and_then(|t| {
                    let end = t.find('}')?;
                    (!t[..end].contains('{')).then(|| {
                        args.push(&t[..end]);
                        &t[end + 1..]
                    })
                });
        }
        match tail {
            Some(tail) => {
                out.push_str(&rest[..at]);
                out.push_str(&replace(&args));
                rest = tail;
            }
            None => {
                out.push_str(&rest[..at + open.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

struct Value {
    value: f64,
    has_operator: bool,
}

fn is_arithmetic(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | '*' | '/' | '(' | ')' | ' ' | '\t')
}

/// The arithmetic next to an `=`: the longest run of arithmetic characters ending at it (left) or
/// starting after it (right), evaluated. `None` when it is not a whole expression.
fn side(part: &str, which: Side) -> Option<Value> {
    let run: String = match which {
        Side::Left => {
            let start = part
                .char_indices()
                .rev()
                .find(|(_, c)| !is_arithmetic(*c))
                .map_or(0, |(i, c)| i + c.len_utf8());
            part[start..].to_owned()
        }
        Side::Right => part.chars().take_while(|c| is_arithmetic(*c)).collect(),
    };
    let mut e = run.trim();
    // A bracket opened or closed outside the run (`(3 + 4) = 7` cut as `3 + 4)`) is not part of it.
    while e.starts_with('(') && e.matches('(').count() > e.matches(')').count() {
        e = e[1..].trim_start();
    }
    while e.ends_with(')') && e.matches(')').count() > e.matches('(').count() {
        e = e[..e.len() - 1].trim_end();
    }
    let first = e.chars().next()?;
    let last = e.chars().last()?;
    if matches!(first, '+' | '*' | '/') || matches!(last, '+' | '-' | '*' | '/') {
        return None;
    }
    let tokens = tokenize(e)?;
    let has_operator = tokens
        .windows(2)
        .any(|w| matches!(w[0], Token::Number(_) | Token::Close) && matches!(w[1], Token::Op(_)));
    let mut parser = Parser { tokens, at: 0 };
    let value = parser.expression(0)?;
    (parser.at == parser.tokens.len() && value.is_finite()).then_some(Value {
        value,
        has_operator,
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token {
    Number(f64),
    Op(char),
    Open,
    Close,
}

/// Splits an expression; `None` for juxtaposed operands (`2 3`, `2(3)`, `(2)(3)`), which are
/// not arithmetic written out.
fn tokenize(e: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = e.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == '\t' {
            i += 1;
            continue;
        }
        let token = if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            i -= 1;
            Token::Number(text.parse().ok()?)
        } else {
            match c {
                '(' => Token::Open,
                ')' => Token::Close,
                _ => Token::Op(c),
            }
        };
        let operand_ends = matches!(tokens.last(), Some(Token::Number(_) | Token::Close));
        if operand_ends && matches!(token, Token::Number(_) | Token::Open) {
            return None;
        }
        tokens.push(token);
        i += 1;
    }
    Some(tokens)
}

/// Recursive descent over `+ -`, then `* /`, then unary minus and brackets.
struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.at).copied()
    }

    fn expression(&mut self, depth: usize) -> Option<f64> {
        let mut value = self.term(depth)?;
        while let Some(Token::Op(op @ ('+' | '-'))) = self.peek() {
            self.at += 1;
            let rhs = self.term(depth)?;
            value = if op == '+' { value + rhs } else { value - rhs };
        }
        Some(value)
    }

    fn term(&mut self, depth: usize) -> Option<f64> {
        let mut value = self.factor(depth)?;
        while let Some(Token::Op(op @ ('*' | '/'))) = self.peek() {
            self.at += 1;
            let rhs = self.factor(depth)?;
            value = if op == '*' {
                value * rhs
            } else if rhs == 0.0 {
                return None;
            } else {
                value / rhs
            };
        }
        Some(value)
    }

    fn factor(&mut self, depth: usize) -> Option<f64> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            Token::Number(n) => {
                self.at += 1;
                Some(n)
            }
            Token::Op('-') => {
                self.at += 1;
                Some(-self.factor(depth + 1)?)
            }
            Token::Open => {
                self.at += 1;
                let value = self.expression(depth + 1)?;
                (self.peek()? == Token::Close).then(|| self.at += 1)?;
                Some(value)
            }
            Token::Op(_) | Token::Close => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn errors(text: &str) -> (u32, u32) {
        let c = check(text);
        (c.checked, c.errors)
    }

    #[test]
    fn right_and_wrong_sums_in_the_forms_models_write() {
        assert_eq!(errors("Total: \\[ 23 + 25 + 20 = 78 \\]"), (1, 1));
        assert_eq!(errors("Total: \\[ 23 + 25 + 20 = 68 \\]"), (1, 0));
        assert_eq!(errors("\\( 165 \\times 12 = 2040 \\)"), (1, 1));
        assert_eq!(errors("\\( 165 \\times 12 = 1980 \\)"), (1, 0));
        assert_eq!(errors("He pays $1,200 + $720 = $1,920."), (1, 0));
        assert_eq!(
            errors("\\$30.00 - \\$0.20 \\times 10 = \\$30.00 - \\$2 = \\$28.00"),
            (2, 0)
        );
        assert_eq!(errors("\\frac{121}{3} = 43"), (1, 1));
        assert_eq!(errors("\\dfrac{121}{3} = 40.33"), (1, 0));
        assert_eq!(errors("3 x 4 = 12 and (2 + 3) \\cdot 4 = 20"), (2, 0));
        assert_eq!(errors("40000 - 75000 = 6000"), (1, 1));
        assert_eq!(errors("20\\% of 50 is 10 = 10"), (0, 0));
    }

    #[test]
    fn what_is_not_a_computation_is_not_checked() {
        // A conversion or a definition has no operator on the left.
        assert_eq!(
            errors("2 \\text{ feet} = 2 \\times 12 \\text{ inches} = 24"),
            (1, 0)
        );
        assert_eq!(errors("x_2 = 5 \\times 4 = 20"), (1, 0));
        // Variables, implicit products and cut expressions are skipped, not guessed at.
        assert_eq!(errors("3x + 2 = 11"), (0, 0));
        assert_eq!(errors("2(3 + 4) = 15"), (0, 0));
        assert_eq!(errors("a + 2) = 28"), (0, 0));
        assert_eq!(errors("no equations here"), (0, 0));
        assert_eq!(errors("1 / 0 = 5"), (0, 0));
        assert_eq!(errors("a <= b, 3 == 3"), (0, 0));
    }

    #[test]
    fn rounding_is_not_an_error() {
        assert_eq!(errors("7 / 3 = 2.33"), (1, 0));
        assert_eq!(errors("10 / 3 = 3.3"), (1, 0));
        assert_eq!(errors("10 / 3 = 4"), (1, 1));
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let c = check(&text);
            prop_assert!(c.errors <= c.checked);
        }

        #[test]
        fn never_panics_on_arithmetic_soup(text in "[0-9 .+*/()=x{}\\-]{0,120}") {
            let c = check(&text);
            prop_assert!(c.errors <= c.checked);
        }

        #[test]
        fn a_correct_product_passes_and_a_wrong_one_is_caught(
            a in 1u32..10_000, b in 1u32..1_000, off in 2u32..50,
        ) {
            let right = u64::from(a) * u64::from(b);
            prop_assert_eq!(errors(&format!("\\[ {a} \\times {b} = {right} \\]")), (1, 0));
            let wrong = right + right * u64::from(off) / 100 + 1;
            prop_assert_eq!(errors(&format!("\\[ {a} \\times {b} = {wrong} \\]")), (1, 1));
        }
    }
}
