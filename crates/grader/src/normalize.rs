//! String-level clean-up of an extracted answer before parsing: math delimiters, escaped
//! backslashes, number formatting (thousands separators, decimal commas), degree marks, currency.
//! Structural LaTeX (spacing, fonts, `\left`, `\dfrac`, text units) is handled by the lexer.

use std::sync::LazyLock;

use regex::Regex;

static DOUBLE_BS_CMD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\\\([a-zA-Z]+)").expect("regex"));
static LITERAL_NL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\\n([^a-z]|$)").expect("regex"));
static BRACE_COMMA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d)\s*\{\s*,\s*\}\s*(\d)").expect("regex"));
static COMMA_BANG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d),\s*\\!\s*(\d)").expect("regex"));
static THIN_SPACE_NUM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d)\\[,;: ](\d{3})").expect("regex"));
/// A repeating decimal `0.1\overline{6}`.
static REPEATING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d*)\.(\d*)\\overline\s*\{\s*(\d{1,12})\s*\}").expect("regex"));
/// Whole answer is a number written with thousands separators (comma or space).
static THOUSANDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[-+]?\d{1,3}(?:(,)\d{3}|( )\d{3})+(?:\.\d+)?$").expect("regex"));
/// A thousands-grouped integer as an operand of arithmetic: `1,234 + 1`. Not inside brackets
/// (`(1,234)` is a pair), not `1,2345`, not `0.1,234`.
static GROUPED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s+\-*/=])\d{1,3}(?:,\d{3})+(?:$|[\s+\-*/=])").expect("regex")
});
/// Whole answer is `a,b` with no space: a decimal comma or a two-element list.
static DECIMAL_COMMA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[-+]?\d+,\d+$").expect("regex"));

/// Commands that may appear with an escaped (doubled) backslash in JSON-mangled strings.
const KNOWN_CMDS: &[&str] = &[
    "frac",
    "dfrac",
    "tfrac",
    "cfrac",
    "left",
    "right",
    "boxed",
    "fbox",
    "sqrt",
    "text",
    "textbf",
    "mathrm",
    "mathbf",
    "pi",
    "cdot",
    "times",
    "begin",
    "end",
    "infty",
    "le",
    "leq",
    "ge",
    "geq",
    "pm",
    "circ",
    "sin",
    "cos",
    "tan",
    "log",
    "ln",
    "in",
    "cup",
    "alpha",
    "beta",
    "gamma",
    "theta",
    "mbox",
    "neq",
    "approx",
    "quad",
    "dots",
    "ldots",
    "cdots",
    "binom",
    "over",
    "lfloor",
    "rfloor",
    "operatorname",
];

/// Undo common escaping damage in raw model/test text: `\\frac` → `\frac`, literal `\n` → newline.
pub fn preclean(text: &str) -> String {
    let mut s = text.to_string();
    // No-break spaces (French puts one before `:`) and full-width digits and colons.
    if !s.is_ascii() {
        s = s
            .chars()
            .map(|c| match c {
                '\u{a0}' | '\u{202f}' | '\u{2009}' | '\u{3000}' => ' ',
                '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
                _ => c,
            })
            .collect();
    }
    if s.contains("\\n") {
        s = LITERAL_NL.replace_all(&s, "\n$1").into_owned();
    }
    if s.contains("\\\\") {
        s = DOUBLE_BS_CMD
            .replace_all(&s, |c: &regex::Captures| {
                let name = &c[1];
                if KNOWN_CMDS.contains(&name) {
                    format!("\\{name}")
                } else {
                    c[0].to_string()
                }
            })
            .into_owned();
    }
    s
}

/// Strip math-mode delimiters and sentence punctuation around an answer.
pub fn strip_delims(s: &str) -> String {
    let mut t = s.trim();
    loop {
        let before = t;
        for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if t.len() >= open.len() + close.len() && t.starts_with(open) && t.ends_with(close) {
                t = t[open.len()..t.len() - close.len()].trim();
            }
        }
        t = t.trim_end_matches(['.', '。']).trim();
        // Markdown emphasis around an answer: `**7**`.
        if let Some(inner) = t.strip_prefix("**").and_then(|x| x.strip_suffix("**")) {
            t = inner.trim();
        }
        t = t.trim_end_matches("**").trim();
        t = t.trim_start_matches('$').trim_end_matches('$').trim();
        if t == before {
            break;
        }
    }
    t.to_string()
}

/// Canonical string form of an answer (before parsing).
pub fn clean_answer(s: &str) -> String {
    let s = preclean(s);
    let mut s = strip_delims(&s);
    if s.contains("\\!") {
        s = COMMA_BANG.replace_all(&s, "$1,$2").into_owned();
    }
    s = s.replace("\\$", "").replace("\\%", "%").replace("\\!", "");
    if s.contains('{') {
        s = BRACE_COMMA.replace_all(&s, "$1,$2").into_owned();
    }
    if s.contains('\\') {
        s = THIN_SPACE_NUM.replace_all(&s, "$1 $2").into_owned();
    }
    if s.contains("\\overline") {
        s = REPEATING
            .replace_all(&s, |c: &regex::Captures| {
                repeating_to_frac(&c[1], &c[2], &c[3])
            })
            .into_owned();
    }
    if s.contains('_') {
        s = based_letters(&s);
    }
    if let Some(c) = canonical_phrase(&s) {
        return c.to_string();
    }
    // A leading `=` or trailing sentence punctuation carries no meaning.
    let t = s
        .trim()
        .trim_start_matches('=')
        .trim()
        .trim_end_matches(['.', ',', ';'])
        .trim();
    t.to_string()
}

/// Word answers that name a set: "no solution" is `\emptyset`, "all real numbers" is `\mathbb{R}`.
/// Only whole-answer phrases are mapped, so "no solution for x > 2" stays text.
fn canonical_phrase(s: &str) -> Option<&'static str> {
    let key: String = loose(s)
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '\\')
        .collect();
    match key.as_str() {
        "nosolution" | "nosolutions" | "norealsolution" | "norealsolutions" | "theemptyset"
        | "emptyset" | "\\emptyset" | "\\varnothing" => Some("\\emptyset"),
        "allrealnumbers" | "allreals" | "allrealx" | "allx" | "realnumbers" | "\\mathbbr"
        | "xin\\mathbbr" => Some("\\mathbb{R}"),
        _ => None,
    }
}

/// Readings of a bare number with separators. Returns alternatives to try, most likely first.
/// `7,425,000` → 7425000 (or the list 7, 425, 000); `1,22` → 1.22 or the list 1, 22.
pub fn number_readings(s: &str) -> Vec<String> {
    let t = s.trim();
    if let Some(c) = THOUSANDS.captures(t) {
        let joined: String = t.chars().filter(|&c| c != ',' && c != ' ').collect();
        let mut v = vec![joined];
        if c.get(1).is_some() {
            v.push(t.to_string());
            // `0,111` / `1,234`: a single comma may also be a decimal comma.
            if t.matches(',').count() == 1 && !t.contains('.') {
                let dec = t.replacen(',', ".", 1);
                if t.trim_start_matches(['-', '+']).starts_with("0,") {
                    v.insert(0, dec);
                } else {
                    v.push(dec);
                }
            }
        }
        return v;
    }
    if DECIMAL_COMMA.is_match(t) {
        return vec![t.to_string(), t.replacen(',', ".", 1)];
    }
    // Inside an expression (`1,234 + 1`), a digit group `d,ddd` with no space is also read as a
    // thousands separator; the comma reading (a list) stays first.
    if t.contains(',') && t.contains(['+', '-', '*', '/', '=']) && GROUPED.is_match(t) {
        let joined = GROUPED.replace_all(t, |c: &regex::Captures| c[0].replace(',', ""));
        return vec![t.to_string(), joined.into_owned()];
    }
    vec![t.to_string()]
}

/// A loose textual key for answers we cannot parse: no markup, spacing or case.
pub fn loose(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphabetic() {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                chars.next();
                continue;
            }
            let drop = matches!(
                name.as_str(),
                "text"
                    | "textbf"
                    | "textit"
                    | "mathrm"
                    | "mathbf"
                    | "mbox"
                    | "textnormal"
                    | "left"
                    | "right"
                    | "displaystyle"
                    | "quad"
                    | "qquad"
                    | "operatorname"
            );
            if !drop {
                out.push('\\');
                out.push_str(&name);
            }
            continue;
        }
        if c.is_whitespace() || c == '{' || c == '}' || c == '$' {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out.trim_end_matches('.').to_string()
}

/// `A.B\overline{C}` as `\frac{ABC - AB}{10^|B| (10^|C| - 1)}`, written out in digits.
fn repeating_to_frac(int_part: &str, fixed: &str, rep: &str) -> String {
    use num_bigint::BigInt;
    let parse = |s: &str| -> BigInt {
        if s.is_empty() {
            BigInt::from(0)
        } else {
            s.parse().unwrap_or_default()
        }
    };
    let all = parse(&format!("{int_part}{fixed}{rep}"));
    let head = parse(&format!("{int_part}{fixed}"));
    let den = num_traits::pow::pow(BigInt::from(10), fixed.len())
        * (num_traits::pow::pow(BigInt::from(10), rep.len()) - 1);
    format!("\\frac{{{}}}{{{}}}", all - head, den)
}

/// A time of day: `14:30`, `2:30 PM`, `2:30 p.m.`, `9:05:30 AM`, `00:15`.
static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([ap])\.?\s*m\.?)?$").expect("regex")
});

/// A time of day as seconds after midnight, and whether it is marked as a time (rather than
/// possibly a ratio `3:10`): by AM/PM, by seconds, by an hour from 13 to 23, or by a leading 0.
fn time_of_day(s: &str) -> Option<(u32, bool)> {
    let t: String = s
        .replace("\\text{", "")
        .replace("\\mathrm{", "")
        .replace(['{', '}', '~'], "")
        .replace("\\,", " ")
        .replace("\\ ", " ");
    let c = TIME.captures(t.trim())?;
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    let (h, m, sec) = (num(1)?, num(2)?, num(3).unwrap_or(0));
    if m >= 60 || sec >= 60 {
        return None;
    }
    let half = c.get(4).map(|x| x.as_str().eq_ignore_ascii_case("p"));
    let h = match half {
        Some(pm) if (1..=12).contains(&h) => h % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if h <= 23 => h,
        None => return None,
    };
    let marked = half.is_some() || c.get(3).is_some() || h >= 13 || c[1].starts_with('0');
    Some((h * 3600 + m * 60 + sec, marked))
}

/// Two times of day (24-hour or 12-hour, with or without seconds): `Some(equal)` when both are
/// times and at least one is marked as a time (AM/PM, seconds, an hour past 12, a leading 0),
/// `None` otherwise, so that `3:10` and `6:20` still compare as ratios. `14:30` = `2:30 PM` =
/// `14:30:00`; `12:15 AM` = `00:15`; `14:30` ≠ `2:30 AM`; `9:05:30` ≠ `9:05 AM`.
pub fn same_time_of_day(a: &str, b: &str) -> Option<bool> {
    let ((x, mx), (y, my)) = (time_of_day(a)?, time_of_day(b)?);
    (mx || my).then_some(x == y)
}

/// A number in a base above 10 with letter digits and its base as a subscript: `1A_{16}`,
/// `FF_{16}`, `(2B)_{12}`.
static BASED_LETTERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[^\\A-Za-z0-9_])\(?([0-9A-Za-z]+)\)?_\{?\(?(\d{1,2})\)?\}?").expect("regex")
});

/// `1A_{16}` → `26`. Only bases 11 to 36, only digit strings valid in that base, with at least
/// one letter, and either a decimal digit among them or two or more capital letters (`FF_{16}`),
/// so that a subscripted name (`a_{16}`, `x_{12}`) stays a name. Bases up to 10 are read by the
/// parser (`101_2`).
fn based_letters(s: &str) -> String {
    BASED_LETTERS
        .replace_all(s, |c: &regex::Captures| {
            let (pre, digits, base) = (&c[1], &c[2], &c[3]);
            let value = base
                .parse::<u32>()
                .ok()
                .filter(|b| (11..=36).contains(b))
                .and_then(|b| {
                    let letters = digits.chars().filter(|d| d.is_ascii_alphabetic()).count();
                    let has_digit = digits.chars().any(|d| d.is_ascii_digit());
                    let capitals = digits
                        .chars()
                        .all(|d| d.is_ascii_digit() || d.is_ascii_uppercase());
                    let plausible = letters > 0 && capitals && (has_digit || letters >= 2);
                    if !plausible || digits.len() > 24 {
                        return None;
                    }
                    u128::from_str_radix(digits, b).ok()
                });
            match value {
                Some(v) => format!("{pre}{v}"),
                None => c[0].to_string(),
            }
        })
        .into_owned()
}
