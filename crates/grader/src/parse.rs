//! LaTeX → expression tree: a small lexer that classifies commands (spacing, fonts, text,
//! delimiters) and a recursive-descent parser with a depth cap.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};

/// Maximum nesting depth the parser accepts before giving up (keeps the stack bounded).
const MAX_DEPTH: usize = 48;
/// Maximum number of tokens in one answer.
const MAX_TOKENS: usize = 4_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Approx,
    In,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Coth,
    Sech,
    Csch,
    Asinh,
    Acosh,
    Atanh,
    Acot,
    Ln,
    Log,
    Exp,
    Sqrt,
    Abs,
    Floor,
    Ceil,
    Gcd,
    Lcm,
    Max,
    Min,
    /// `n!!`: the product of the integers up to `n` with the parity of `n`.
    DoubleFactorial,
    /// `\begin{vmatrix}…\end{vmatrix}`: the determinant of its one matrix argument.
    Det,
    /// `\Gamma(x)`, only when written with parentheses (`\Gamma` alone is a symbol).
    Gamma,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A literal number; `decimals` is the number of digits written after the point.
    Num(BigRational, u32),
    Pi,
    E,
    I,
    Inf,
    Sym(String),
    Neg(Box<Node>),
    /// Sum of signed terms (`true` = subtracted).
    Add(Vec<(bool, Node)>),
    /// Product of factors (`true` = divided by).
    Mul(Vec<(bool, Node)>),
    Pow(Box<Node>, Box<Node>),
    /// `a ± b`; `a` absent for a leading `±`. `sign` false means `∓`.
    Pm(Option<Box<Node>>, Box<Node>, bool),
    Fact(Box<Node>),
    Percent(Box<Node>),
    /// `x^\circ`: radians inside trigonometric functions, a plain unit elsewhere.
    Degrees(Box<Node>),
    Func(Func, Vec<Node>),
    /// `log_b x`, `\sqrt[n]{x}`: (base/index, argument)
    LogBase(Box<Node>, Box<Node>),
    Root(Box<Node>, Box<Node>),
    Binom(Box<Node>, Box<Node>),
    Mod(Box<Node>, Box<Node>),
    /// `\sum` / `\prod` over an integer range: (is_product, var, lo, hi, body)
    BigOp(bool, String, Box<Node>, Box<Node>, Box<Node>),
    /// `\int_a^b f \, dx`
    Integral(String, Box<Node>, Box<Node>, Box<Node>),
    Text(String),
    Tuple(Vec<Node>),
    Interval(Box<Node>, Box<Node>, bool, bool),
    Set(Vec<Node>),
    Matrix(Vec<Vec<Node>>),
    Union(Vec<Node>),
    Ratio(Box<Node>, Box<Node>),
    Rel(Vec<Node>, Vec<RelOp>),
    /// A top-level list; `semi` marks `;`-separated groups (each a `List`).
    List(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Ident(String),
    Word(String),
    Cmd(String),
    Text(String),
    Op(char),
    Rel(RelOp),
    Pm(bool),
    RowSep,
    Begin(String),
    End(String),
    SetOpen,
    SetClose,
    Sep,
    Semi,
}

/// Parse error (the caller falls back to string comparison).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

type PResult<T> = Result<T, ParseError>;

const FONT_CMDS: &[&str] = &[
    "mathrm",
    "mathbf",
    "mathit",
    "boldsymbol",
    "mathsf",
    "mathcal",
    "mathbb",
    "operatorname",
    "mathtt",
    "bm",
    "mathnormal",
    "rm",
    "bf",
    "it",
    "textup",
    "mathscr",
    "mathfrak",
];
const TEXT_CMDS: &[&str] = &[
    "text",
    "textnormal",
    "mbox",
    "textrm",
    "textit",
    "textbf",
    "hbox",
    "textsf",
    "texttt",
    "emph",
];
const SKIP_CMDS: &[&str] = &[
    "left",
    "right",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
    "middle",
    "displaystyle",
    "textstyle",
    "scriptstyle",
    "limits",
    "nolimits",
    "quad",
    "qquad",
    "enspace",
    "thinspace",
    "negthinspace",
    "medspace",
    "thickspace",
    "hfill",
    "space",
    "nonumber",
    "notag",
    "mathstrut",
    "strut",
    ",",
    ";",
    ":",
    "!",
    " ",
    "$",
    "phantom",
    "cr",
];
const DECOR_CMDS: &[&str] = &[
    "overline",
    "bar",
    "vec",
    "hat",
    "tilde",
    "widehat",
    "widetilde",
    "overrightarrow",
    "underline",
    "dot",
    "ddot",
    "mathring",
    "check",
    "acute",
    "grave",
    "breve",
];

fn func_of(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" | "tg" => Func::Tan,
        "cot" | "ctg" => Func::Cot,
        "sec" => Func::Sec,
        "csc" | "cosec" => Func::Csc,
        "arcsin" | "asin" => Func::Asin,
        "arccos" | "acos" => Func::Acos,
        "arctan" | "atan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "coth" => Func::Coth,
        "sech" => Func::Sech,
        "csch" | "cosech" => Func::Csch,
        "arsinh" | "arcsinh" | "asinh" => Func::Asinh,
        "arcosh" | "arccosh" | "acosh" => Func::Acosh,
        "artanh" | "arctanh" | "atanh" => Func::Atanh,
        "arccot" | "acot" | "arcctg" => Func::Acot,
        "ln" => Func::Ln,
        "log" | "lg" => Func::Log,
        "exp" => Func::Exp,
        "sqrt" => Func::Sqrt,
        "abs" => Func::Abs,
        "floor" => Func::Floor,
        "ceil" => Func::Ceil,
        "gcd" => Func::Gcd,
        "lcm" => Func::Lcm,
        "max" => Func::Max,
        "det" => Func::Det,
        "min" => Func::Min,
        _ => return None,
    })
}

fn is_multi_arg(f: Func) -> bool {
    matches!(f, Func::Gcd | Func::Lcm | Func::Max | Func::Min)
}

/// Read a `{...}` group starting at `chars[i] == '{'`; returns (content, index after `}`).
fn read_group(chars: &[char], i: usize) -> Option<(String, usize)> {
    if chars.get(i) != Some(&'{') {
        return None;
    }
    let mut depth = 0usize;
    for (j, &c) in chars.iter().enumerate().skip(i) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((chars[i + 1..j].iter().collect(), j + 1));
                }
            }
            '\\' => {}
            _ => {}
        }
    }
    None
}

/// The run of ASCII letters after `i` (skipping spaces), if any.
fn next_word(chars: &[char], i: usize) -> Option<&'static str> {
    let j = skip_ws(chars, i);
    let w: String = chars[j..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    (w.eq_ignore_ascii_case("cent")).then_some("cent")
}

/// Short unit abbreviations recognised after a number even though they are under 3 letters.
const SHORT_UNITS: &[&str] = &[
    "cm", "mm", "km", "kg", "mg", "ml", "mL", "ft", "yd", "hr", "lb", "oz", "mi", "sq",
];

/// Units that may be glued to the number (`10weeks`, `5kg`, `3hours`): a run of letters right
/// after digits is a unit only when it is one of these (or of [`SHORT_UNITS`]); any other run
/// (`2ab`, `3x`, `2pi`) stays algebra.
const GLUED_UNITS: &[&str] = &[
    "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "hrs", "hour", "hours",
    "day", "days", "week", "weeks", "month", "months", "year", "years", "meter", "meters", "metre",
    "metres", "inch", "inches", "foot", "feet", "yard", "yards", "mile", "miles", "gram", "grams",
    "pound", "pounds", "lbs", "ounce", "ounces", "ton", "tons", "liter", "liters", "litre",
    "litres", "gallon", "gallons", "cup", "cups", "dollar", "dollars", "cent", "cents", "euro",
    "euros", "yuan", "mph", "units", "unit",
];

/// A word after a number is a unit (and is dropped) when it reads as a word, not as a product
/// of variables: at least three letters, separated from the number by a space, not a function
/// name (`2 \sin x`), and not followed by an argument; or one of [`SHORT_UNITS`]; or, glued to
/// the digits, one of [`GLUED_UNITS`] of two letters or more (`10weeks`). `2ab`, `3 xy`, `5m`
/// and `5 \min(a,b)` therefore stay algebra.
fn is_unit_word(w: &str, chars: &[char], start: usize, end: usize) -> bool {
    if SHORT_UNITS.contains(&w) {
        return true;
    }
    let spaced = start > 0 && chars[start - 1].is_whitespace();
    let glued = start > 0 && chars[start - 1].is_ascii_digit();
    if glued {
        let next = chars.get(end).copied();
        return w.len() >= 2
            && GLUED_UNITS.contains(&w.to_ascii_lowercase().as_str())
            && !matches!(next, Some('(' | '{' | '^' | '_'))
            && !next.is_some_and(|c| c.is_ascii_alphanumeric());
    }
    let next = chars[skip_ws(chars, end)..].first().copied();
    let argument_follows =
        matches!(next, Some('(' | '{' | '\\')) || next.is_some_and(|c| c.is_ascii_digit());
    let lower = w.to_ascii_lowercase();
    let function =
        func_of(&lower).is_some() || matches!(lower.as_str(), "mod" | "pi" | "inf" | "infty");
    w.len() >= 3
        && spaced
        && !argument_follows
        && (!function || matches!(lower.as_str(), "min" | "sec"))
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    i
}

fn lex(s: &str, out: &mut Vec<Tok>, depth: usize) -> PResult<()> {
    if depth > 8 {
        return Err(ParseError("lexer nesting"));
    }
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if out.len() > MAX_TOKENS {
            return Err(ParseError("too many tokens"));
        }
        let c = chars[i];
        if c.is_whitespace() || c == '~' || c == '$' {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let st = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len()
                && chars[i] == '.'
                && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
            {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // Scientific notation: 1E20, 2.5E-3, 6.02e23 (a lowercase `e` only when digits follow
            // directly; `2e` alone is 2·e).
            if i < chars.len() && (chars[i] == 'E' || chars[i] == 'e') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '-' || chars[j] == '+') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            out.push(Tok::Num(
                chars[st..i].iter().collect::<String>().replace('e', "E"),
            ));
            // `1./3` (a float written with a bare trailing point).
            if chars.get(i) == Some(&'.') && !chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() {
            let st = i;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let w: String = chars[st..i].iter().collect();
            let lower = w.to_ascii_lowercase();
            let after_quantity = matches!(out.last(), Some(Tok::Num(_)) | Some(Tok::Text(_)));
            match lower.as_str() {
                "and" | "or" => out.push(Tok::Sep),
                "pct" | "percent" | "percentage" | "percents" => out.push(Tok::Op('%')),
                // `28 per cent`
                "per" if after_quantity && next_word(&chars, i) == Some("cent") => {
                    out.push(Tok::Op('%'));
                    i = skip_ws(&chars, i) + 4;
                }
                "degree" | "degrees" | "deg" if after_quantity => out.push(Tok::Op('°')),
                _ if after_quantity && is_unit_word(&w, &chars, st, i) => out.push(Tok::Text(w)),
                _ if w.len() == 1 => out.push(Tok::Ident(w)),
                _ => out.push(Tok::Word(w)),
            }
            continue;
        }
        if c == '\\' {
            let nc = match chars.get(i + 1) {
                Some(&nc) => nc,
                None => {
                    i += 1;
                    continue;
                }
            };
            if !nc.is_ascii_alphabetic() {
                i += 2;
                match nc {
                    '\\' => out.push(Tok::RowSep),
                    '{' => out.push(Tok::SetOpen),
                    '}' => out.push(Tok::SetClose),
                    '%' => out.push(Tok::Op('%')),
                    '|' => out.push(Tok::Op('|')),
                    '#' | '&' | '_' => {}
                    _ => {} // spacing \, \; \! \: \  and \$
                }
                continue;
            }
            let st = i + 1;
            i += 1;
            while i < chars.len() && chars[i].is_ascii_alphabetic() {
                i += 1;
            }
            let name: String = chars[st..i].iter().collect();
            let n = name.as_str();
            if SKIP_CMDS.contains(&n) {
                if n == "left" || n == "right" || n.starts_with("big") || n.starts_with("Big") {
                    // `\left.` is an invisible delimiter.
                    let j = skip_ws(&chars, i);
                    if chars.get(j) == Some(&'.') {
                        i = j + 1;
                    }
                }
                continue;
            }
            if n == "phantom" || n == "hspace" || n == "vspace" || n == "label" {
                let j = skip_ws(&chars, i);
                if let Some((_, k)) = read_group(&chars, j) {
                    i = k;
                }
                continue;
            }
            if TEXT_CMDS.contains(&n) {
                let j = skip_ws(&chars, i);
                let Some((content, k)) = read_group(&chars, j) else {
                    return Err(ParseError("bad \\text"));
                };
                i = k;
                let t = content.trim();
                let tl = t.to_lowercase();
                if tl == "and" || tl == "or" || tl == "," || tl == "，" {
                    out.push(Tok::Sep);
                } else if matches!(
                    tl.as_str(),
                    "%" | "\\%" | "percent" | "percentage" | "per cent"
                ) {
                    out.push(Tok::Op('%'));
                } else if matches!(tl.as_str(), "lcm" | "gcd" | "mod" | "max")
                    || (func_of(&tl).is_some() && !matches!(tl.as_str(), "min" | "sec" | "ln"))
                        && !matches!(out.last(), Some(Tok::Num(_)))
                {
                    // `\text{lcm}(4, 6)`: an operator name written as text. After a number,
                    // `\text{min}` and `\text{sec}` are units, so they stay text.
                    out.push(Tok::Cmd(tl));
                } else if !t.is_empty() {
                    out.push(Tok::Text(t.to_string()));
                }
                continue;
            }
            if FONT_CMDS.contains(&n) || DECOR_CMDS.contains(&n) {
                let j = skip_ws(&chars, i);
                if let Some((content, k)) = read_group(&chars, j) {
                    i = k;
                    if n == "mathbb" && content.trim() == "R" {
                        // The real line.
                        out.extend([
                            Tok::Op('('),
                            Tok::Op('-'),
                            Tok::Ident("\\infty".into()),
                            Tok::Op(','),
                            Tok::Ident("\\infty".into()),
                            Tok::Op(')'),
                        ]);
                        continue;
                    }
                    let t = content.trim_matches(|c: char| c.is_whitespace() || c == '~');
                    if t.len() > 1 && t.chars().all(|c| c.is_ascii_alphabetic()) {
                        let unit_like = matches!(t, "min" | "max" | "sec") && n != "operatorname";
                        if !unit_like
                            && (func_of(t).is_some() || t == "mod" || t == "lcm" || t == "gcd")
                        {
                            out.push(Tok::Cmd(t.to_string()));
                        } else if FONT_CMDS.contains(&n)
                            && n != "mathbf"
                            && n != "boldsymbol"
                            && n != "bm"
                        {
                            out.push(Tok::Text(t.to_string()));
                        } else {
                            out.push(Tok::Ident(t.to_string()));
                        }
                    } else {
                        let t1 = t.chars().next().unwrap_or('e');
                        if n == "mathrm"
                            && t.len() == 1
                            && t1.is_ascii_alphabetic()
                            && !matches!(t1, 'e' | 'i' | 'd')
                            && matches!(out.last(), Some(Tok::Num(_)))
                        {
                            // `100\,\mathrm{m}`: an upright letter after a number is a unit
                            // (`\mathrm{e}`, `\mathrm{i}`, `\mathrm{d}` are constants/differentials).
                            out.push(Tok::Text(t.to_string()));
                        } else {
                            lex(&content, out, depth + 1)?;
                        }
                    }
                }
                continue;
            }
            if n == "begin" || n == "end" {
                let j = skip_ws(&chars, i);
                let Some((env, mut k)) = read_group(&chars, j) else {
                    return Err(ParseError("bad environment"));
                };
                if n == "begin" {
                    if env == "array" || env == "tabular" {
                        let k2 = skip_ws(&chars, k);
                        if let Some((_, k3)) = read_group(&chars, k2) {
                            k = k3;
                        }
                    }
                    out.push(Tok::Begin(env));
                } else {
                    out.push(Tok::End(env));
                }
                i = k;
                continue;
            }
            let tok = match n {
                "dfrac" | "tfrac" | "cfrac" | "frac" => Tok::Cmd("frac".into()),
                "le" | "leq" | "leqslant" | "leqq" => Tok::Rel(RelOp::Le),
                "ge" | "geq" | "geqslant" | "geqq" => Tok::Rel(RelOp::Ge),
                "lt" => Tok::Rel(RelOp::Lt),
                "gt" => Tok::Rel(RelOp::Gt),
                "ne" | "neq" => Tok::Rel(RelOp::Ne),
                "approx" | "simeq" | "approxeq" | "thickapprox" | "cong" => Tok::Rel(RelOp::Approx),
                "in" => Tok::Rel(RelOp::In),
                "equiv" => Tok::Rel(RelOp::Eq),
                "pm" => Tok::Pm(true),
                "mp" => Tok::Pm(false),
                "cdot" | "times" | "ast" | "cdotp" => Tok::Op('*'),
                "div" => Tok::Op('/'),
                "cup" => Tok::Op('∪'),
                "prime" => Tok::Op('\''),
                "lbrace" => Tok::SetOpen,
                "rbrace" => Tok::SetClose,
                "langle" => Tok::Op('('),
                "rangle" => Tok::Op(')'),
                "lvert" | "rvert" | "vert" | "mid" => Tok::Op('|'),
                "lfloor" => Tok::Cmd("lfloor".into()),
                "rfloor" => Tok::Cmd("rfloor".into()),
                "lceil" => Tok::Cmd("lceil".into()),
                "rceil" => Tok::Cmd("rceil".into()),
                "colon" => Tok::Op(':'),
                "percent" => Tok::Op('%'),
                "infty" | "infin" => Tok::Ident("\\infty".into()),
                "emptyset" | "varnothing" | "O" => Tok::Text("∅".into()),
                "exponentialE" => Tok::Ident("e".into()),
                "imaginaryI" => Tok::Ident("i".into()),
                "circ" | "degree" => Tok::Op('°'),
                "And" | "text{and}" => Tok::Sep,
                "quad" => continue,
                _ => Tok::Cmd(name.clone()),
            };
            out.push(tok);
            continue;
        }
        if c == '^' {
            // `^\circ`, `^{\circ}`: a degree mark.
            let rest: String = chars[i + 1..chars.len().min(i + 16)]
                .iter()
                .filter(|c| !c.is_whitespace())
                .collect();
            let mut degree = false;
            for pat in ["\\circ", "{\\circ}"] {
                if rest.starts_with(pat)
                    && !rest[pat.len()..].starts_with(|c: char| c.is_ascii_alphabetic())
                {
                    let mut need = pat.chars().count();
                    let mut j = i + 1;
                    while need > 0 && j < chars.len() {
                        if !chars[j].is_whitespace() {
                            need -= 1;
                        }
                        j += 1;
                    }
                    out.push(Tok::Op('°'));
                    i = j;
                    degree = true;
                    break;
                }
            }
            // Only a mark read here skips the `^`: a degree token already before it (`°^`,
            // `\circ^2`) must not stop the lexer from moving on.
            if degree {
                continue;
            }
        }
        i += 1;
        let tok = match c {
            '+' | '*' | '/' | '^' | '_' | '(' | ')' | '[' | ']' | '{' | '}' | ',' | '|' | '&'
            | ':' | '\'' | '%' => Tok::Op(c),
            '-' | '−' | '–' => Tok::Op('-'),
            ';' => Tok::Semi,
            '!' => {
                if chars.get(i) == Some(&'=') {
                    i += 1;
                    Tok::Rel(RelOp::Ne)
                } else {
                    Tok::Op('!')
                }
            }
            '=' => {
                if chars.get(i) == Some(&'<') {
                    i += 1;
                    Tok::Rel(RelOp::Le)
                } else if chars.get(i) == Some(&'>') {
                    i += 1;
                    Tok::Rel(RelOp::Ge)
                } else {
                    Tok::Rel(RelOp::Eq)
                }
            }
            '<' | '>' => {
                let eq = chars.get(i) == Some(&'=');
                if eq {
                    i += 1;
                }
                Tok::Rel(match (c, eq) {
                    ('<', false) => RelOp::Lt,
                    ('<', true) => RelOp::Le,
                    (_, false) => RelOp::Gt,
                    _ => RelOp::Ge,
                })
            }
            '≤' => Tok::Rel(RelOp::Le),
            '≥' => Tok::Rel(RelOp::Ge),
            '≠' => Tok::Rel(RelOp::Ne),
            '≈' => Tok::Rel(RelOp::Approx),
            '∈' => Tok::Rel(RelOp::In),
            '±' => Tok::Pm(true),
            '×' | '·' | '⋅' => Tok::Op('*'),
            '÷' => Tok::Op('/'),
            '∪' => Tok::Op('∪'),
            'π' => Tok::Cmd("pi".into()),
            '∞' => Tok::Ident("\\infty".into()),
            '√' => Tok::Cmd("sqrt".into()),
            '°' => Tok::Op('°'),
            '²' | '³' => {
                out.push(Tok::Op('^'));
                Tok::Num(if c == '²' { "2" } else { "3" }.into())
            }
            c if c.is_alphabetic() => Tok::Ident(c.to_string()),
            _ => return Err(ParseError("unexpected character")),
        };
        out.push(tok);
    }
    Ok(())
}

/// Are the top-level items of `s` joined by words ("and", "or", `\text{ and }`) rather than
/// by commas alone? Such a list names alternatives, so its order carries no meaning.
pub fn joined_by_words(s: &str) -> bool {
    let mut toks = Vec::new();
    if lex(s, &mut toks, 0).is_err() {
        return false;
    }
    let mut depth = 0i32;
    for t in &toks {
        match t {
            Tok::Op('(' | '[' | '{') | Tok::SetOpen | Tok::Begin(_) => depth += 1,
            Tok::Op(')' | ']' | '}') | Tok::SetClose | Tok::End(_) => depth -= 1,
            Tok::Sep if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// The units written after quantities in an answer, folded for comparison (lower case, a plural
/// `s` dropped, `feet` → `foot`) and sorted: `12\text{ cm}^2` → `["cm"]`, `5 hours` → `["hour"]`.
/// A text answer (`\text{Evelyn}`) is not a unit. Percent and degree marks are not units here
/// (they have rules of their own).
pub fn units(s: &str) -> Vec<String> {
    let mut toks = Vec::new();
    if lex(s, &mut toks, 0).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for w in toks.windows(2) {
        let after_quantity = matches!(
            w[0],
            Tok::Num(_) | Tok::Text(_) | Tok::Ident(_) | Tok::Op(')' | '}' | '°' | '!')
        );
        if let (true, Tok::Text(t)) = (after_quantity, &w[1]) {
            out.extend(t.split_whitespace().map(fold_unit));
        }
    }
    out.sort();
    out
}

fn fold_unit(w: &str) -> String {
    let w = w.to_lowercase();
    let w = w.trim_matches(|c: char| !c.is_alphanumeric());
    match w {
        "feet" => "foot".to_string(),
        _ if w.len() > 4 && (w.ends_with("ches") || w.ends_with("shes")) => {
            w[..w.len() - 2].to_string()
        }
        _ if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") => w[..w.len() - 1].to_string(),
        _ => w.to_string(),
    }
}

/// Parse a number literal (decimal or scientific) into an exact rational.
pub fn parse_number(s: &str) -> Option<(BigRational, u32)> {
    let (mant, exp) = match s.find('E') {
        Some(p) => (&s[..p], s[p + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (ip, fp) = match mant.find('.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, ""),
    };
    if exp.abs() > 400 || ip.len() + fp.len() > 2000 {
        return None;
    }
    let digits = format!("{ip}{fp}");
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    let n: BigInt = digits.parse().ok()?;
    let scale = exp - fp.len() as i64;
    let ten = BigInt::from(10);
    let r = if scale >= 0 {
        BigRational::from_integer(n * num_traits::pow::pow(ten, scale as usize))
    } else {
        BigRational::new(n, num_traits::pow::pow(ten, (-scale) as usize))
    };
    let decimals = if exp == 0 { fp.len() as u32 } else { 0 };
    Some((r, decimals))
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
    abs_depth: usize,
    in_matrix: usize,
}

/// Parse one answer string into a tree.
pub fn parse(s: &str) -> Result<Node, ParseError> {
    if s.len() > 3000 {
        return Err(ParseError("too long"));
    }
    let mut toks = Vec::new();
    lex(s, &mut toks, 0)?;
    if toks.is_empty() {
        return Err(ParseError("empty"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        abs_depth: 0,
        in_matrix: 0,
    };
    let n = p.parse_top()?;
    if p.pos < p.toks.len() {
        return Err(ParseError("trailing tokens"));
    }
    Ok(n)
}

fn num(n: i64) -> Node {
    Node::Num(BigRational::from_integer(BigInt::from(n)), 0)
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }
    fn is_op(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Op(c))
    }
    fn eat_op(&mut self, c: char) -> bool {
        if self.is_op(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect_op(&mut self, c: char) -> PResult<()> {
        if self.eat_op(c) {
            Ok(())
        } else {
            Err(ParseError("expected delimiter"))
        }
    }
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(ParseError("nesting too deep"))
        } else {
            Ok(())
        }
    }
    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Top level: `;`-separated groups of `,`/`and`/`or`-separated items.
    fn parse_top(&mut self) -> PResult<Node> {
        let mut groups = Vec::new();
        loop {
            let g = self.parse_items(true)?;
            groups.push(g);
            if self.peek() == Some(&Tok::Semi) {
                self.pos += 1;
                continue;
            }
            break;
        }
        groups.retain(|g| !g.is_empty());
        if groups.is_empty() {
            return Err(ParseError("empty"));
        }
        if groups.len() == 1 {
            let mut g = groups.pop().unwrap_or_default();
            if g.len() == 1 {
                return Ok(g.pop().unwrap_or(Node::List(vec![])));
            }
            return Ok(Node::List(g));
        }
        Ok(Node::List(
            groups
                .into_iter()
                .map(|mut g| {
                    if g.len() == 1 {
                        g.pop().unwrap_or(Node::List(vec![]))
                    } else {
                        Node::List(g)
                    }
                })
                .collect(),
        ))
    }

    fn at_item_sep(&self, top: bool) -> bool {
        match self.peek() {
            Some(Tok::Op(',')) | Some(Tok::Sep) => true,
            Some(Tok::Semi) => !top,
            _ => false,
        }
    }

    /// Items separated by `,`, `and`, `or` (and `;` inside brackets). Empty items are skipped.
    fn parse_items(&mut self, top: bool) -> PResult<Vec<Node>> {
        let mut items = Vec::new();
        loop {
            while self.at_item_sep(top) {
                self.pos += 1;
            }
            if self.at_end_of_items(top) {
                break;
            }
            items.push(self.parse_rel()?);
            if !self.at_item_sep(top) {
                break;
            }
        }
        Ok(items)
    }

    fn at_end_of_items(&self, top: bool) -> bool {
        match self.peek() {
            None => true,
            Some(Tok::Semi) => top,
            Some(Tok::Op(')')) | Some(Tok::Op(']')) | Some(Tok::Op('}')) | Some(Tok::SetClose)
            | Some(Tok::End(_)) => true,
            _ => false,
        }
    }

    fn parse_rel(&mut self) -> PResult<Node> {
        let first = self.parse_ratio()?;
        let mut parts = vec![first];
        let mut ops = Vec::new();
        while let Some(Tok::Rel(op)) = self.peek().cloned() {
            self.pos += 1;
            ops.push(op);
            parts.push(self.parse_ratio()?);
        }
        if ops.is_empty() {
            Ok(parts.pop().unwrap_or(Node::List(vec![])))
        } else {
            Ok(Node::Rel(parts, ops))
        }
    }

    fn parse_ratio(&mut self) -> PResult<Node> {
        let a = self.parse_union()?;
        if self.eat_op(':') {
            let b = self.parse_union()?;
            return Ok(Node::Ratio(Box::new(a), Box::new(b)));
        }
        Ok(a)
    }

    fn parse_union(&mut self) -> PResult<Node> {
        let a = self.parse_add()?;
        if !self.is_op('∪') {
            return Ok(a);
        }
        let mut parts = vec![a];
        while self.eat_op('∪') {
            parts.push(self.parse_add()?);
        }
        Ok(Node::Union(parts))
    }

    fn parse_add(&mut self) -> PResult<Node> {
        let mut terms: Vec<(bool, Node)> = Vec::new();
        let mut pm: Option<(Node, bool)> = None;
        // Leading sign is handled by parse_unary.
        let first = self.parse_mul()?;
        terms.push((false, first));
        loop {
            match self.peek() {
                Some(Tok::Op('+')) => {
                    self.pos += 1;
                    terms.push((false, self.parse_mul()?));
                }
                Some(Tok::Op('-')) => {
                    self.pos += 1;
                    terms.push((true, self.parse_mul()?));
                }
                Some(Tok::Pm(s)) => {
                    let s = *s;
                    self.pos += 1;
                    let t = self.parse_mul()?;
                    if pm.is_some() {
                        return Err(ParseError("two ± in one sum"));
                    }
                    pm = Some((t, s));
                }
                _ => break,
            }
        }
        let base = if terms.len() == 1 {
            terms.pop().map(|t| t.1).unwrap_or(num(0))
        } else {
            Node::Add(terms)
        };
        Ok(match pm {
            Some((t, s)) => Node::Pm(Some(Box::new(base)), Box::new(t), s),
            None => base,
        })
    }

    fn starts_factor(&self) -> bool {
        match self.peek() {
            Some(Tok::Num(_)) | Some(Tok::Ident(_)) | Some(Tok::Word(_)) | Some(Tok::Begin(_))
            | Some(Tok::SetOpen) => true,
            Some(Tok::Cmd(c)) => !matches!(
                c.as_str(),
                "mod"
                    | "bmod"
                    | "rfloor"
                    | "rceil"
                    | "choose"
                    | "over"
                    | "to"
                    | "rightarrow"
                    | "Rightarrow"
                    | "implies"
                    | "iff"
                    | "cap"
                    | "setminus"
            ),
            Some(Tok::Op('(')) | Some(Tok::Op('[')) | Some(Tok::Op('{')) => true,
            Some(Tok::Op('|')) => self.abs_depth == 0,
            Some(Tok::Text(_)) => true,
            _ => false,
        }
    }

    fn parse_mul(&mut self) -> PResult<Node> {
        let first = self.parse_unary()?;
        let mut factors = vec![(false, first)];
        loop {
            match self.peek() {
                Some(Tok::Op('*')) => {
                    self.pos += 1;
                    factors.push((false, self.parse_unary()?));
                }
                Some(Tok::Op('/')) => {
                    self.pos += 1;
                    factors.push((true, self.parse_unary()?));
                }
                Some(Tok::Cmd(c)) if c == "mod" || c == "bmod" => {
                    self.pos += 1;
                    let rhs = self.parse_unary()?;
                    let lhs = if factors.len() == 1 {
                        factors.pop().map(|f| f.1).unwrap_or(num(0))
                    } else {
                        Node::Mul(std::mem::take(&mut factors))
                    };
                    factors = vec![(false, Node::Mod(Box::new(lhs), Box::new(rhs)))];
                }
                Some(Tok::Text(_)) => {
                    // A text run after a quantity is a unit: drop it (with any power on it).
                    self.pos += 1;
                    if self.eat_op('^') {
                        self.parse_exponent()?;
                    }
                }
                _ if self.starts_factor() => {
                    let prev_int = match factors.last() {
                        Some((false, Node::Num(_, 0))) => Some(false),
                        Some((false, Node::Neg(x))) if matches!(**x, Node::Num(_, 0)) => Some(true),
                        _ => None,
                    };
                    let f = self.parse_pow_chain()?;
                    // Mixed number: `3\frac{1}{2}` is 7/2 and `-3\frac12` is -7/2 (the sign
                    // covers the whole number). Only integer-over-integer fractions qualify, so
                    // `2\frac{x}{3}` stays a product.
                    if let Some(negative) = prev_int
                        && let Node::Mul(ref v) = f
                        && is_simple_frac(v)
                    {
                        let (_, whole) = factors.pop().unwrap_or((false, num(0)));
                        let whole = match whole {
                            Node::Neg(x) => *x,
                            w => w,
                        };
                        let mixed = Node::Add(vec![(false, whole), (false, f)]);
                        factors.push((
                            false,
                            if negative {
                                Node::Neg(Box::new(mixed))
                            } else {
                                mixed
                            },
                        ));
                        continue;
                    }
                    factors.push((false, f));
                }
                _ => break,
            }
        }
        Ok(if factors.len() == 1 && !factors[0].0 {
            factors.pop().map(|f| f.1).unwrap_or(num(0))
        } else {
            Node::Mul(factors)
        })
    }

    fn parse_unary(&mut self) -> PResult<Node> {
        self.enter()?;
        let r = match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                self.parse_unary().map(|n| Node::Neg(Box::new(n)))
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.parse_unary()
            }
            Some(Tok::Pm(s)) => {
                let s = *s;
                self.pos += 1;
                self.parse_mul().map(|n| Node::Pm(None, Box::new(n), s))
            }
            _ => self.parse_pow_chain(),
        };
        self.leave();
        r
    }

    /// A power-level factor, used for implicit multiplication chains.
    fn parse_pow_chain(&mut self) -> PResult<Node> {
        self.enter()?;
        let r = self.parse_pow_inner();
        self.leave();
        r
    }

    fn parse_pow_inner(&mut self) -> PResult<Node> {
        let base = self.parse_postfix()?;
        if self.eat_op('^') {
            let e = self.parse_exponent()?;
            let mut n = Node::Pow(Box::new(base), Box::new(e));
            n = self.parse_postfix_ops(n)?;
            return Ok(n);
        }
        Ok(base)
    }

    fn parse_exponent(&mut self) -> PResult<Node> {
        self.enter()?;
        let r = match self.peek() {
            Some(Tok::Op('{')) => {
                self.pos += 1;
                let n = self.parse_group_body('}')?;
                self.parse_postfix_ops(n)
            }
            Some(Tok::Op('-')) => {
                self.pos += 1;
                self.parse_exponent().map(|n| Node::Neg(Box::new(n)))
            }
            Some(Tok::Num(s)) => {
                // `10^32` in plain-text answers means 10^{32}.
                let s = s.clone();
                self.pos += 1;
                parse_number(&s)
                    .map(|(r, d)| Node::Num(r, d))
                    .ok_or(ParseError("bad number"))
            }
            _ => self.parse_postfix(),
        };
        self.leave();
        r
    }

    /// Take one digit from a number token (`\frac12`, `x^23` means x^2 · 3).
    fn single_digit(&mut self) -> Node {
        if let Some(Tok::Num(s)) = self.peek().cloned() {
            let mut cs = s.chars();
            let d = cs.next().unwrap_or('0');
            let rest: String = cs.collect();
            if rest.is_empty() || !d.is_ascii_digit() {
                self.pos += 1;
                if let Some((r, dec)) = parse_number(&s) {
                    return Node::Num(r, dec);
                }
            } else {
                self.toks[self.pos] = Tok::Num(rest);
            }
            return num(d.to_digit(10).unwrap_or(0) as i64);
        }
        num(0)
    }

    /// A LaTeX macro argument: `{...}`, or a single token.
    fn parse_arg(&mut self) -> PResult<Node> {
        match self.peek() {
            Some(Tok::Op('{')) => {
                self.pos += 1;
                self.parse_group_body('}')
            }
            Some(Tok::Num(_)) => Ok(self.single_digit()),
            _ => self.parse_postfix(),
        }
    }

    fn parse_postfix(&mut self) -> PResult<Node> {
        let p = self.parse_primary()?;
        self.parse_postfix_ops(p)
    }

    fn parse_postfix_ops(&mut self, mut n: Node) -> PResult<Node> {
        loop {
            match self.peek() {
                Some(Tok::Op('!')) => {
                    self.pos += 1;
                    // `n!!` is the double factorial (8!! = 8·6·4·2), never `(n!)!`.
                    n = if self.eat_op('!') {
                        Node::Func(Func::DoubleFactorial, vec![n])
                    } else {
                        Node::Fact(Box::new(n))
                    };
                }
                Some(Tok::Op('%')) => {
                    self.pos += 1;
                    n = Node::Percent(Box::new(n));
                }
                Some(Tok::Op('°')) => {
                    self.pos += 1;
                    n = Node::Degrees(Box::new(n));
                }
                Some(Tok::Op('\'')) => {
                    self.pos += 1;
                    n = match n {
                        Node::Sym(s) => Node::Sym(format!("{s}'")),
                        _ => return Err(ParseError("prime on non-symbol")),
                    };
                }
                Some(Tok::Op('_')) => {
                    self.pos += 1;
                    let sub = self.subscript_text()?;
                    n = match n {
                        Node::Sym(s) => Node::Sym(format!("{s}_{sub}")),
                        Node::Num(ref r, 0) => {
                            base_number(r, &sub).ok_or(ParseError("bad base"))?
                        }
                        _ => return Err(ParseError("subscript")),
                    };
                }
                _ => return Ok(n),
            }
        }
    }

    /// Raw text of a subscript, used as part of a symbol name.
    fn subscript_text(&mut self) -> PResult<String> {
        match self.next() {
            Some(Tok::Op('{')) => {
                let mut depth = 1;
                let mut s = String::new();
                while let Some(t) = self.next() {
                    match t {
                        Tok::Op('{') => depth += 1,
                        Tok::Op('}') => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(s);
                            }
                        }
                        _ => {}
                    }
                    s.push_str(&tok_text(&t));
                }
                Err(ParseError("unclosed subscript"))
            }
            Some(Tok::Num(s)) => {
                let mut cs = s.chars();
                let d = cs.next().unwrap_or('0');
                let rest: String = cs.collect();
                if !rest.is_empty() {
                    self.pos -= 1;
                    self.toks[self.pos] = Tok::Num(rest);
                }
                Ok(d.to_string())
            }
            Some(t) => Ok(tok_text(&t)),
            None => Err(ParseError("missing subscript")),
        }
    }

    /// Body of a bracket group up to `close`.
    fn parse_group_body(&mut self, close: char) -> PResult<Node> {
        let items = self.parse_items(false)?;
        // `{n \choose k}`
        if close == '}' && self.peek() == Some(&Tok::Cmd("choose".into())) && items.len() == 1 {
            self.pos += 1;
            let k = self.parse_rel()?;
            self.expect_op('}')?;
            let n = items.into_iter().next().unwrap_or(num(0));
            return Ok(Node::Binom(Box::new(n), Box::new(k)));
        }
        self.expect_op(close)?;
        let mut items = items;
        match items.len() {
            0 => Err(ParseError("empty group")),
            1 => Ok(items.pop().unwrap_or(num(0))),
            _ => Ok(if close == '}' {
                Node::Set(items)
            } else {
                Node::Tuple(items)
            }),
        }
    }

    fn parse_primary(&mut self) -> PResult<Node> {
        self.enter()?;
        let r = self.parse_primary_inner();
        self.leave();
        r
    }

    fn parse_primary_inner(&mut self) -> PResult<Node> {
        let Some(t) = self.next() else {
            return Err(ParseError("unexpected end"));
        };
        match t {
            Tok::Num(s) => {
                let (r, d) = parse_number(&s).ok_or(ParseError("bad number"))?;
                Ok(Node::Num(r, d))
            }
            Tok::Ident(s) => Ok(match s.as_str() {
                "\\infty" => Node::Inf,
                "e" => Node::E,
                "i" => Node::I,
                _ => Node::Sym(s),
            }),
            Tok::Word(w) => {
                if let Some(f) = func_of(&w) {
                    return self.parse_func(f);
                }
                if w == "mod" {
                    return Err(ParseError("mod"));
                }
                if w == "inf" || w == "infty" || w == "infinity" {
                    return Ok(Node::Inf);
                }
                if w == "pi" {
                    return Ok(Node::Pi);
                }
                // A run of letters in math mode is a product of single-letter symbols.
                let parts: Vec<(bool, Node)> = w
                    .chars()
                    .map(|c| {
                        (
                            false,
                            match c {
                                'e' => Node::E,
                                'i' => Node::I,
                                _ => Node::Sym(c.to_string()),
                            },
                        )
                    })
                    .collect();
                Ok(Node::Mul(parts))
            }
            Tok::Text(t) => Ok(Node::Text(t)),
            Tok::Op('(') => self.parse_bracket('('),
            Tok::Op('[') => self.parse_bracket('['),
            Tok::Op('{') => self.parse_group_body('}'),
            Tok::SetOpen => {
                if let Some(cond) = self.set_builder()? {
                    return Ok(cond);
                }
                let items = self.parse_items(false)?;
                if self.next() != Some(Tok::SetClose) {
                    return Err(ParseError("unclosed set"));
                }
                Ok(Node::Set(items))
            }
            Tok::Op('|') => {
                self.abs_depth += 1;
                let inner = self.parse_add();
                self.abs_depth -= 1;
                let inner = inner?;
                self.expect_op('|')?;
                Ok(Node::Func(Func::Abs, vec![inner]))
            }
            Tok::Begin(env) => self.parse_env(&env),
            Tok::Cmd(c) => self.parse_cmd(&c),
            _ => Err(ParseError("unexpected token")),
        }
    }

    /// Set-builder notation `\{x \mid x > 2\}` / `\{x : x > 2\}` (after the `\{`): the set is
    /// its condition, which then compares as a relation or interval. `None` (position restored)
    /// when the braces hold a plain list.
    fn set_builder(&mut self) -> PResult<Option<Node>> {
        let start = self.pos;
        self.abs_depth += 1;
        // The head is a name, optionally with its domain (`x \in \mathbb{R}`); not a ratio, so
        // that `:` is left for the separator.
        let mut head = self.parse_union();
        while head.is_ok() && self.peek() == Some(&Tok::Rel(RelOp::In)) {
            self.pos += 1;
            head = self.parse_union();
        }
        self.abs_depth -= 1;
        if head.is_err() || !(self.is_op('|') || self.is_op(':')) {
            self.pos = start;
            return Ok(None);
        }
        self.pos += 1;
        let conds = self.parse_items(false)?;
        if self.next() != Some(Tok::SetClose) {
            return Err(ParseError("unclosed set"));
        }
        let mut conds = conds;
        match conds.len() {
            1 => Ok(conds.pop()),
            _ => Err(ParseError("set-builder with several conditions")),
        }
    }

    fn parse_bracket(&mut self, open: char) -> PResult<Node> {
        let items = self.parse_items(false)?;
        let close = match self.next() {
            Some(Tok::Op(c)) if c == ')' || c == ']' => c,
            _ => return Err(ParseError("unclosed bracket")),
        };
        let mut items = items;
        match (items.len(), open, close) {
            (0, _, _) => Err(ParseError("empty bracket")),
            (1, '(', ')') | (1, '[', ']') => Ok(items.pop().unwrap_or(num(0))),
            (2, '(', ')') => Ok(Node::Tuple(items)),
            (2, _, _) => {
                let b = items.pop().unwrap_or(num(0));
                let a = items.pop().unwrap_or(num(0));
                Ok(Node::Interval(
                    Box::new(a),
                    Box::new(b),
                    open == '[',
                    close == ']',
                ))
            }
            (_, _, _) if open == '(' && close == ')' || open == '[' && close == ']' => {
                Ok(Node::Tuple(items))
            }
            _ => Err(ParseError("mismatched bracket")),
        }
    }

    fn parse_env(&mut self, env: &str) -> PResult<Node> {
        let e = env.trim_end_matches('*');
        if !matches!(
            e,
            "pmatrix"
                | "bmatrix"
                | "Bmatrix"
                | "vmatrix"
                | "Vmatrix"
                | "matrix"
                | "smallmatrix"
                | "array"
        ) {
            return Err(ParseError("unsupported environment"));
        }
        self.in_matrix += 1;
        let mut rows: Vec<Vec<Node>> = vec![vec![]];
        loop {
            match self.peek() {
                Some(Tok::End(_)) => {
                    self.pos += 1;
                    break;
                }
                None => {
                    self.in_matrix -= 1;
                    return Err(ParseError("unclosed matrix"));
                }
                Some(Tok::Op('&')) => {
                    self.pos += 1;
                }
                Some(Tok::RowSep) => {
                    self.pos += 1;
                    rows.push(vec![]);
                }
                _ => {
                    let cell = self.parse_rel();
                    let cell = match cell {
                        Ok(c) => c,
                        Err(e) => {
                            self.in_matrix -= 1;
                            return Err(e);
                        }
                    };
                    if let Some(r) = rows.last_mut() {
                        r.push(cell);
                    }
                    if !matches!(
                        self.peek(),
                        Some(Tok::Op('&')) | Some(Tok::RowSep) | Some(Tok::End(_))
                    ) {
                        self.in_matrix -= 1;
                        return Err(ParseError("bad matrix cell"));
                    }
                }
            }
        }
        self.in_matrix -= 1;
        rows.retain(|r| !r.is_empty());
        if rows.is_empty() {
            return Err(ParseError("empty matrix"));
        }
        let w = rows[0].len();
        if rows.iter().any(|r| r.len() != w) {
            return Err(ParseError("ragged matrix"));
        }
        if e == "vmatrix" {
            // Vertical bars around a square array denote its determinant, a number.
            return Ok(Node::Func(Func::Det, vec![Node::Matrix(rows)]));
        }
        Ok(Node::Matrix(rows))
    }

    fn parse_func(&mut self, f: Func) -> PResult<Node> {
        // Optional power before the argument: \sin^2 x, \sin^{-1} x.
        let mut power = None;
        let mut base = None;
        loop {
            if self.eat_op('^') {
                power = Some(self.parse_exponent()?);
            } else if self.eat_op('_') && f == Func::Log {
                base = Some(self.parse_arg()?);
            } else {
                break;
            }
        }
        let mut f = f;
        if let Some(Node::Neg(ref inner)) = power
            && **inner == num(1)
        {
            f = match f {
                Func::Sin => Func::Asin,
                Func::Cos => Func::Acos,
                Func::Tan => Func::Atan,
                Func::Cot => Func::Acot,
                Func::Sinh => Func::Asinh,
                Func::Cosh => Func::Acosh,
                Func::Tanh => Func::Atanh,
                _ => return Err(ParseError("inverse")),
            };
            power = None;
        }
        let args = if self.is_op('(') && is_multi_arg(f) {
            self.pos += 1;
            let items = self.parse_items(false)?;
            self.expect_op(')')?;
            items
        } else if self.peek() == Some(&Tok::SetOpen) && is_multi_arg(f) {
            // `\min\{3, 7, -2\}`: the extremum of a set.
            self.pos += 1;
            let items = self.parse_items(false)?;
            if self.next() != Some(Tok::SetClose) {
                return Err(ParseError("unclosed set"));
            }
            items
        } else if self.is_op('(') || self.is_op('{') || self.is_op('[') {
            vec![self.parse_postfix()?]
        } else {
            // \sin 2x: the argument is the following implicit product, stopping at another function.
            let mut fs = vec![(false, self.parse_pow_chain()?)];
            while self.starts_factor()
                && !self.next_is_func()
                && !matches!(self.peek(), Some(Tok::Text(_)))
            {
                fs.push((false, self.parse_pow_chain()?));
            }
            vec![if fs.len() == 1 {
                fs.pop().map(|x| x.1).unwrap_or(num(0))
            } else {
                Node::Mul(fs)
            }]
        };
        if args.is_empty() {
            return Err(ParseError("no argument"));
        }
        let mut node = match base {
            Some(b) => Node::LogBase(
                Box::new(b),
                Box::new(args.into_iter().next().unwrap_or(num(0))),
            ),
            None => Node::Func(f, args),
        };
        if let Some(p) = power {
            node = Node::Pow(Box::new(node), Box::new(p));
        }
        Ok(node)
    }

    fn next_is_func(&self) -> bool {
        match self.peek() {
            Some(Tok::Cmd(c)) | Some(Tok::Word(c)) => func_of(c).is_some(),
            _ => false,
        }
    }

    fn parse_cmd(&mut self, c: &str) -> PResult<Node> {
        if let Some(f) = func_of(c) {
            if f == Func::Sqrt {
                if self.eat_op('[') {
                    let idx = self.parse_group_body(']')?;
                    let x = self.parse_arg()?;
                    return Ok(Node::Root(Box::new(idx), Box::new(x)));
                }
                let x = self.parse_arg()?;
                return Ok(Node::Func(Func::Sqrt, vec![x]));
            }
            return self.parse_func(f);
        }
        match c {
            "frac" => {
                let a = self.parse_arg()?;
                let b = self.parse_arg()?;
                Ok(Node::Mul(vec![(false, a), (true, b)]))
            }
            "binom" | "dbinom" | "tbinom" | "choose" => {
                let a = self.parse_arg()?;
                let b = self.parse_arg()?;
                Ok(Node::Binom(Box::new(a), Box::new(b)))
            }
            "pi" => Ok(Node::Pi),
            "Gamma" if self.is_op('(') => self.parse_func(Func::Gamma),
            // `\operatorname{mod}(17, 5)`: the remainder written as a function.
            "mod" | "bmod" if self.is_op('(') => {
                self.pos += 1;
                let mut items = self.parse_items(false)?;
                self.expect_op(')')?;
                if items.len() != 2 {
                    return Err(ParseError("mod takes two arguments"));
                }
                let b = items.pop().unwrap_or(num(1));
                let a = items.pop().unwrap_or(num(0));
                Ok(Node::Mod(Box::new(a), Box::new(b)))
            }
            "lfloor" | "lceil" => {
                let inner = self.parse_add()?;
                let close = if c == "lfloor" { "rfloor" } else { "rceil" };
                if self.next() != Some(Tok::Cmd(close.into())) {
                    return Err(ParseError("unclosed floor"));
                }
                Ok(Node::Func(
                    if c == "lfloor" {
                        Func::Floor
                    } else {
                        Func::Ceil
                    },
                    vec![inner],
                ))
            }
            "sum" | "prod" => {
                let (var, lo, hi) = self.parse_bounds(true)?;
                let mut body = self.parse_mul()?;
                if var == "i" || var == "e" {
                    // `\sum_{i=1}^{n} i`: the index, not the imaginary unit.
                    rebind(&mut body, &var);
                }
                Ok(Node::BigOp(
                    c == "prod",
                    var,
                    Box::new(lo),
                    Box::new(hi),
                    Box::new(body),
                ))
            }
            "int" => {
                let (_, lo, hi) = self.parse_bounds(false)?;
                // Body up to the differential `d<var>`.
                let start = self.pos;
                let mut end = None;
                let mut k = start;
                while k < self.toks.len() {
                    if let Tok::Ident(d) = &self.toks[k]
                        && d == "d"
                        && let Some(Tok::Ident(v)) = self.toks.get(k + 1)
                    {
                        end = Some((k, v.clone()));
                        break;
                    }
                    if let Tok::Word(w) = &self.toks[k]
                        && w.len() == 2
                        && w.starts_with('d')
                    {
                        end = Some((k, w[1..].to_string()));
                        break;
                    }
                    k += 1;
                }
                let Some((k, var)) = end else {
                    return Err(ParseError("integral without differential"));
                };
                let body = if k == start {
                    num(1)
                } else {
                    let sub: Vec<Tok> = self.toks[start..k].to_vec();
                    let mut p = Parser {
                        toks: sub,
                        pos: 0,
                        depth: self.depth,
                        abs_depth: 0,
                        in_matrix: 0,
                    };
                    let b = p.parse_add()?;
                    if p.pos != p.toks.len() {
                        return Err(ParseError("integral body"));
                    }
                    b
                };
                let is_word = matches!(self.toks.get(k), Some(Tok::Word(_)));
                self.pos = if is_word { k + 1 } else { k + 2 };
                Ok(Node::Integral(
                    var,
                    Box::new(lo),
                    Box::new(hi),
                    Box::new(body),
                ))
            }
            _ => {
                // Greek letters and unknown macros act as symbols.
                Ok(Node::Sym(format!("\\{c}")))
            }
        }
    }

    /// `_{k=1}^{n}` bounds for sums and integrals.
    fn parse_bounds(&mut self, need_var: bool) -> PResult<(String, Node, Node)> {
        let mut var = String::new();
        let mut lo = None;
        let mut hi = None;
        for _ in 0..2 {
            if self.eat_op('_') {
                let n = self.parse_arg()?;
                if let Node::Rel(parts, ops) = &n
                    && (ops == &[RelOp::Eq] || ops == &[RelOp::Ge])
                {
                    match &parts[0] {
                        Node::Sym(v) => var = v.clone(),
                        Node::I => var = "i".into(),
                        Node::E => var = "e".into(),
                        _ => {}
                    }
                    lo = Some(parts[1].clone());
                    if ops == &[RelOp::Ge] {
                        // `\sum_{n \ge 0}`: no upper bound.
                        hi = Some(Node::Inf);
                    }
                    continue;
                }
                lo = Some(n);
            } else if self.eat_op('^') {
                hi = Some(self.parse_arg()?);
            }
        }
        match (lo, hi) {
            (Some(l), Some(h)) if !need_var || !var.is_empty() => Ok((var, l, h)),
            _ => Err(ParseError("bounds")),
        }
    }
}

/// Turn the constants `i`/`e` back into the symbol `var` inside a sum over `var`.
fn rebind(n: &mut Node, var: &str) {
    let hit = match n {
        Node::I => var == "i",
        Node::E => var == "e",
        _ => false,
    };
    if hit {
        *n = Node::Sym(var.to_string());
        return;
    }
    match n {
        Node::Neg(a) | Node::Fact(a) | Node::Percent(a) | Node::Degrees(a) => rebind(a, var),
        Node::Add(v) | Node::Mul(v) => v.iter_mut().for_each(|x| rebind(&mut x.1, var)),
        Node::Pow(a, b)
        | Node::LogBase(a, b)
        | Node::Root(a, b)
        | Node::Binom(a, b)
        | Node::Mod(a, b)
        | Node::Ratio(a, b) => {
            rebind(a, var);
            rebind(b, var);
        }
        Node::Func(_, v) | Node::Tuple(v) | Node::Set(v) | Node::List(v) => {
            v.iter_mut().for_each(|x| rebind(x, var))
        }
        _ => {}
    }
}

fn is_simple_frac(v: &[(bool, Node)]) -> bool {
    v.len() == 2
        && !v[0].0
        && v[1].0
        && matches!(v[0].1, Node::Num(_, 0))
        && matches!(v[1].1, Node::Num(_, 0))
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Num(s) | Tok::Ident(s) | Tok::Word(s) | Tok::Text(s) => s.clone(),
        Tok::Cmd(s) => format!("\\{s}"),
        Tok::Op(c) => c.to_string(),
        Tok::Rel(_) => "=".into(),
        Tok::Sep => ",".into(),
        Tok::Semi => ";".into(),
        _ => String::new(),
    }
}

/// `204_5` → the integer with those digits in base 5.
fn base_number(r: &BigRational, base: &str) -> Option<Node> {
    let b: u32 = base.trim().parse().ok()?;
    if !(2..=36).contains(&b) || !r.is_integer() {
        return None;
    }
    let digits = r.to_integer().to_string();
    let mut acc = BigInt::zero();
    for ch in digits.chars() {
        let d = ch.to_digit(10)?;
        if d >= b {
            return None;
        }
        acc = acc * b + d;
    }
    let _ = BigInt::one();
    Some(Node::Num(BigRational::from_integer(acc), 0))
}
