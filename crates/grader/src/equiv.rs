//! Answer equivalence: turns parse trees into answer shapes (scalars, tuples, lists, sets,
//! intervals, matrices, relations, text) and compares them, exactly where possible and by
//! evaluation at deterministic random points otherwise.

use std::collections::BTreeSet;

use num_bigint::BigInt;
use num_rational::BigRational;

use crate::eval::{Env, Evaluator};
use crate::normalize::{clean_answer, loose, number_readings};
use crate::options::{GradeOptions, ListOrder, Tolerance, Units};
use crate::parse::{Func, Node, RelOp, parse};
use crate::value::{EvalError, Val, is_terminating, val_eq};

/// Number of random points used for expressions with free variables.
const ROUNDS: u64 = 4;
/// At most this many `±` signs are expanded in one expression.
const MAX_PM: usize = 4;

#[derive(Debug, Clone)]
pub enum Ans {
    /// An expression; `percent` when written with `%`; `mask` picks the `±` branches.
    Scalar {
        node: Node,
        percent: bool,
        mask: u32,
    },
    Value(Val),
    NegInf,
    PosInf,
    Tuple(Vec<Ans>),
    /// A list of alternatives or solutions, compared without regard to order: items joined by
    /// "and"/"or", `±` branches, repeated labels (`x = 2, x = 3`), or structured items (tuples,
    /// intervals). Against a tuple it is ordered.
    List(Vec<Ans>),
    /// A plain comma list of values (`10, 4, -2`): ordered, like a tuple written without
    /// parentheses. Only a [`Ans::List`] or a set on the other side lifts the order.
    Seq(Vec<Ans>),
    /// Labelled results `a_3 = 2, a_{37} = 19` (distinct labels): matched label by label against
    /// another record with the same labels, and in the written order against anything else.
    Record(Vec<(String, Ans)>),
    Set(Vec<Ans>),
    Interval(Box<Ans>, Box<Ans>, bool, bool),
    Union(Vec<Ans>),
    Matrix(Vec<Vec<Ans>>),
    /// `f op 0` with op one of `=`, `≠`, `>`, `≥`.
    Rel(Node, RelOp),
    Text(String),
}

pub fn children(n: &Node) -> Vec<&Node> {
    match n {
        Node::Num(..) | Node::Pi | Node::E | Node::I | Node::Inf | Node::Sym(_) | Node::Text(_) => {
            vec![]
        }
        Node::Neg(a) | Node::Fact(a) | Node::Percent(a) | Node::Degrees(a) => vec![a],
        Node::Add(v) | Node::Mul(v) => v.iter().map(|x| &x.1).collect(),
        Node::Pow(a, b)
        | Node::LogBase(a, b)
        | Node::Root(a, b)
        | Node::Binom(a, b)
        | Node::Mod(a, b)
        | Node::Ratio(a, b) => {
            vec![a, b]
        }
        Node::Pm(a, b, _) => a
            .iter()
            .map(|x| &**x)
            .chain(std::iter::once(&**b))
            .collect(),
        Node::Func(_, v) | Node::Tuple(v) | Node::Set(v) | Node::Union(v) | Node::List(v) => {
            v.iter().collect()
        }
        Node::BigOp(_, _, a, b, c) | Node::Integral(_, a, b, c) => vec![a, b, c],
        Node::Interval(a, b, _, _) => vec![a, b],
        Node::Matrix(rows) => rows.iter().flatten().collect(),
        Node::Rel(parts, _) => parts.iter().collect(),
    }
}

/// Free symbols (bound variables of sums and integrals excluded).
pub fn free_syms(n: &Node, out: &mut BTreeSet<String>) {
    match n {
        Node::Sym(s) => {
            out.insert(s.clone());
        }
        Node::BigOp(_, v, lo, hi, body) | Node::Integral(v, lo, hi, body) => {
            free_syms(lo, out);
            free_syms(hi, out);
            let mut inner = BTreeSet::new();
            free_syms(body, &mut inner);
            inner.remove(v);
            out.extend(inner);
        }
        _ => children(n).into_iter().for_each(|c| free_syms(c, out)),
    }
}

fn count_pm(n: &Node) -> usize {
    let own = usize::from(matches!(n, Node::Pm(..)));
    own + children(n).into_iter().map(count_pm).sum::<usize>()
}

/// Does `n` involve infinity as a value? The upper bound of `\sum_{n=1}^{\infty}` does not:
/// the series is evaluated as a number.
fn has_inf(n: &Node) -> bool {
    match n {
        Node::Inf => true,
        Node::BigOp(false, _, lo, _, body) => has_inf(lo) || has_inf(body),
        _ => children(n).into_iter().any(has_inf),
    }
}

/// A name-like left-hand side (`x`, `f(x)`, `(p, q)`, `A:B`, `\frac{NO}{BO}`): no numbers, no sums.
fn is_label(n: &Node) -> bool {
    match n {
        Node::Sym(_) => true,
        Node::Mul(v) => v.iter().all(|(_, x)| is_label(x)),
        Node::Tuple(v) => v.iter().all(is_label),
        Node::Ratio(a, b) => is_label(a) && is_label(b),
        _ => false,
    }
}

/// The left side of an equation that only names the value after it: a [`is_label`] name, or
/// the length `|AB|` of a segment named by two or more letters. `|x| = 3` is not a label (it is
/// a condition on `x`), so a single-symbol absolute value stays an equation. Used for `=` only:
/// in `|x| \ge 3` the left side is an expression to solve, never a name.
fn is_eq_label(n: &Node) -> bool {
    match n {
        Node::Func(Func::Abs, a) if a.len() == 1 => {
            matches!(&a[0], Node::Mul(v) if v.len() >= 2 && v.iter().all(|(d, x)| !d && matches!(x, Node::Sym(_))))
        }
        _ => is_label(n),
    }
}

fn is_constant(n: &Node) -> bool {
    let mut s = BTreeSet::new();
    free_syms(n, &mut s);
    s.is_empty()
}

fn sub(a: &Node, b: &Node) -> Node {
    Node::Add(vec![(false, a.clone()), (true, b.clone())])
}

fn bound(n: &Node) -> Ans {
    match n {
        Node::Inf => Ans::PosInf,
        Node::Neg(a) if **a == Node::Inf => Ans::NegInf,
        _ => Ans::Scalar {
            node: n.clone(),
            percent: false,
            mask: 0,
        },
    }
}

fn scalar(n: Node) -> Vec<Ans> {
    let k = count_pm(&n);
    if k == 0 {
        return vec![Ans::Scalar {
            node: n,
            percent: false,
            mask: 0,
        }];
    }
    if k > MAX_PM {
        return vec![Ans::Scalar {
            node: n,
            percent: false,
            mask: u32::MAX,
        }];
    }
    (0..(1u32 << k))
        .map(|m| Ans::Scalar {
            node: n.clone(),
            percent: false,
            mask: m,
        })
        .collect()
}

fn one_or_list(mut v: Vec<Ans>) -> Ans {
    if v.len() == 1 {
        v.pop().unwrap_or(Ans::List(vec![]))
    } else {
        Ans::List(v)
    }
}

/// Convert a parse tree into an answer shape. A node may expand into several items (`±`).
pub fn to_ans(n: &Node) -> Vec<Ans> {
    match n {
        Node::List(items) => {
            let (mut v, free) = list_items(items);
            vec![if v.len() == 1 {
                v.pop().unwrap_or(Ans::List(vec![]))
            } else if free {
                Ans::List(v)
            } else {
                Ans::Seq(v)
            }]
        }
        Node::Tuple(v) => vec![Ans::Tuple(
            v.iter().map(|x| one_or_list(to_ans(x))).collect(),
        )],
        Node::Set(v) => vec![Ans::Set(v.iter().flat_map(to_ans).collect())],
        Node::Interval(a, b, lc, rc) => vec![Ans::Interval(
            Box::new(bound(a)),
            Box::new(bound(b)),
            *lc,
            *rc,
        )],
        Node::Union(parts) => vec![Ans::Union(
            parts
                .iter()
                .map(|p| match p {
                    Node::Tuple(v) if v.len() == 2 => {
                        Ans::Interval(Box::new(bound(&v[0])), Box::new(bound(&v[1])), false, false)
                    }
                    _ => one_or_list(to_ans(p)),
                })
                .collect(),
        )],
        Node::Matrix(rows) => vec![Ans::Matrix(
            rows.iter()
                .map(|r| r.iter().map(|x| one_or_list(to_ans(x))).collect())
                .collect(),
        )],
        Node::Percent(x) => vec![Ans::Scalar {
            node: (**x).clone(),
            percent: true,
            mask: 0,
        }],
        Node::Text(t) => vec![Ans::Text(t.clone())],
        Node::Rel(parts, ops) => rel_to_ans(parts, ops),
        Node::Inf => vec![Ans::PosInf],
        Node::Neg(a) if **a == Node::Inf => vec![Ans::NegInf],
        _ if crate::matrix::has_matrix(n) => match crate::matrix::reduce(n) {
            Some(m) => vec![Ans::Matrix(
                m.into_iter()
                    .map(|r| r.into_iter().map(Ans::Value).collect())
                    .collect(),
            )],
            None => scalar(n.clone()),
        },
        _ => scalar(n.clone()),
    }
}

/// Is a list item a structure (a tuple, set, interval…) rather than a value? A list of such
/// items is a list of solutions, whose order carries no meaning.
fn is_structured(n: &Node) -> bool {
    match n {
        Node::Tuple(_) | Node::Set(_) | Node::Interval(..) | Node::Union(_) | Node::List(_) => true,
        Node::Rel(_, ops) => ops.iter().any(|o| !matches!(o, RelOp::Eq | RelOp::Approx)),
        _ => false,
    }
}

/// Items of a bare list, with `x = 1, y = 2` assignments grouped, and whether the list is
/// order-free (see [`Ans::List`] and [`Ans::Seq`]).
fn list_items(items: &[Node]) -> (Vec<Ans>, bool) {
    let mut labels: Vec<Option<String>> = Vec::new();
    let mut values: Vec<Vec<Ans>> = Vec::new();
    let mut any_label = false;
    let mut free = items.iter().any(is_structured);
    for it in items {
        if let Node::Rel(parts, ops) = it
            && ops.len() == 1
            && ops[0] == RelOp::Eq
            && is_eq_label(&parts[0])
        {
            any_label = true;
            labels.push(Some(format!("{:?}", parts[0])));
            values.push(to_ans(&parts[1]));
            continue;
        }
        let v = to_ans(it);
        if any_label && labels.last().is_some_and(|l| l.is_some()) && !matches!(it, Node::Rel(..)) {
            // `n = 1, 2, 3`: a continuation of the previous assignment.
            if let Some(last) = values.last_mut() {
                last.extend(v);
            }
            continue;
        }
        labels.push(None);
        values.push(v);
    }
    // `±` branches are alternatives.
    free |= values.iter().any(|v| v.len() > 1);
    if any_label {
        let names: Vec<&String> = labels.iter().flatten().collect();
        let distinct: BTreeSet<&String> = names.iter().copied().collect();
        if names.len() == labels.len()
            && distinct.len() == names.len()
            && names.len() >= 2
            && values.iter().all(|v| v.len() == 1)
        {
            // `p = 5, q = 2` is the record {p: 5, q: 2}.
            let record = labels
                .into_iter()
                .flatten()
                .zip(values.into_iter().flatten())
                .collect();
            return (vec![Ans::Record(record)], false);
        }
        // The same name twice (`x = 2, x = 3`): alternative values of one unknown.
        free |= distinct.len() < names.len();
    }
    (values.into_iter().flatten().collect(), free)
}

fn flip(op: RelOp) -> RelOp {
    match op {
        RelOp::Lt => RelOp::Gt,
        RelOp::Le => RelOp::Ge,
        RelOp::Gt => RelOp::Lt,
        RelOp::Ge => RelOp::Le,
        o => o,
    }
}

fn rel_to_ans(parts: &[Node], ops: &[RelOp]) -> Vec<Ans> {
    // Approximations are annotations: `x = 1/3 ≈ 0.33` means `x = 1/3`, and
    // `\frac{\sqrt{91}}{\pi} \approx 3.04` means the exact value. Only after a name
    // (`x \approx 11`) is the approximation the answer.
    let (skip, ops) = if ops.first() == Some(&RelOp::Approx) && is_eq_label(&parts[0]) {
        (1, &ops[1..])
    } else {
        (0, ops)
    };
    let parts = &parts[skip..];
    if ops.is_empty() {
        return to_ans(&parts[0]);
    }
    let cut = ops
        .iter()
        .position(|o| *o == RelOp::Approx)
        .unwrap_or(ops.len());
    let parts = &parts[..=cut];
    let ops: Vec<RelOp> = ops[..cut]
        .iter()
        .map(|o| if *o == RelOp::Approx { RelOp::Eq } else { *o })
        .collect();
    if ops.is_empty() {
        return to_ans(&parts[0]);
    }
    if ops.len() == 1 && ops[0] == RelOp::In {
        return to_ans(&parts[1]);
    }
    if ops.iter().all(|o| *o == RelOp::Eq) {
        let (lhs, last) = (&parts[0], &parts[parts.len() - 1]);
        if parts.len() >= 3 || is_eq_label(lhs) || parts.iter().all(is_constant) {
            return to_ans(last);
        }
        return vec![Ans::Rel(sub(lhs, last), RelOp::Eq)];
    }
    let ineq = |o: &RelOp| matches!(o, RelOp::Lt | RelOp::Le | RelOp::Gt | RelOp::Ge);
    if ops.len() == 2 && ops.iter().all(ineq) && is_constant(&parts[0]) && is_constant(&parts[2]) {
        let up = |o: RelOp| matches!(o, RelOp::Lt | RelOp::Le);
        if up(ops[0]) && up(ops[1]) {
            return vec![Ans::Interval(
                Box::new(bound(&parts[0])),
                Box::new(bound(&parts[2])),
                ops[0] == RelOp::Le,
                ops[1] == RelOp::Le,
            )];
        }
        if !up(ops[0]) && !up(ops[1]) {
            return vec![Ans::Interval(
                Box::new(bound(&parts[2])),
                Box::new(bound(&parts[0])),
                ops[1] == RelOp::Ge,
                ops[0] == RelOp::Ge,
            )];
        }
    }
    if ops.len() == 1 && ineq(&ops[0]) {
        let (l, r, op) = (&parts[0], &parts[1], ops[0]);
        let (var_side, c, op) = if is_constant(r) && !is_constant(l) {
            (l, r, op)
        } else if is_constant(l) && !is_constant(r) {
            (r, l, flip(op))
        } else {
            return vec![Ans::Rel(
                normalize_rel(l, r, op).0,
                normalize_rel(l, r, op).1,
            )];
        };
        if is_label(var_side) {
            return vec![half_line(bound(c), op)];
        }
        if let Some(ans) = solve_linear(&sub(var_side, c), op) {
            return vec![ans];
        }
        let (f, o) = normalize_rel(l, r, ops[0]);
        return vec![Ans::Rel(f, o)];
    }
    if ops.len() == 1 && ops[0] == RelOp::Ne {
        return vec![Ans::Rel(sub(&parts[0], &parts[1]), RelOp::Ne)];
    }
    vec![Ans::Text(format!("{parts:?}{ops:?}"))]
}

fn half_line(c: Ans, op: RelOp) -> Ans {
    match op {
        RelOp::Lt | RelOp::Le => {
            Ans::Interval(Box::new(Ans::NegInf), Box::new(c), false, op == RelOp::Le)
        }
        _ => Ans::Interval(Box::new(c), Box::new(Ans::PosInf), op == RelOp::Ge, false),
    }
}

/// `l op r` as `f op' 0` with op' in {>, ≥}.
fn normalize_rel(l: &Node, r: &Node, op: RelOp) -> (Node, RelOp) {
    match op {
        RelOp::Lt => (sub(r, l), RelOp::Gt),
        RelOp::Le => (sub(r, l), RelOp::Ge),
        o => (sub(l, r), o),
    }
}

/// Solve `f(x) op 0` for a single variable when `f` is linear.
fn solve_linear(f: &Node, op: RelOp) -> Option<Ans> {
    let mut syms = BTreeSet::new();
    free_syms(f, &mut syms);
    if syms.len() != 1 {
        return None;
    }
    let var = syms.into_iter().next()?;
    let at = |x: i64| -> Option<Val> {
        let mut env = Env::new();
        env.insert(var.clone(), crate::value::int(x));
        crate::eval::eval(f, &env).ok()
    };
    let (f0, f1, f3, fm) = (at(0)?, at(1)?, at(3)?, at(-2)?);
    let slope = f1.sub(&f0).ok()?;
    // Linear on both sides of 0 (`|x| - 3` is linear for x ≥ 0 only).
    if slope.is_zero()
        || !val_eq(&f3.sub(&f0).ok()?, &slope.mul(&crate::value::int(3)).ok()?)
        || !val_eq(&fm.sub(&f0).ok()?, &slope.mul(&crate::value::int(-2)).ok()?)
    {
        return None;
    }
    let root = f0.neg().div(&slope).ok()?;
    let s = slope.real()?;
    let op = if s < 0.0 { flip(op) } else { op };
    // f > 0  ⟺  x > root (for positive slope)
    Some(half_line(Ans::Value(root), op))
}

/// Deterministic pseudo-random rational point for symbol `name` in round `r`.
fn point(name: &str, r: u64) -> Val {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ r.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h ^= h >> 29;
    let p = 7 + (h % 89) as i64;
    let q = 11 + ((h >> 17) % 23) as i64;
    Val::Exact(BigRational::new(BigInt::from(p), BigInt::from(q)))
}

/// Deterministic small integer point (2..=7).
fn int_point(name: &str, r: u64) -> Val {
    let Val::Exact(p) = point(name, r) else {
        return crate::value::int(3);
    };
    let n = p.numer().iter_u64_digits().next().unwrap_or(0);
    crate::value::int(2 + (n % 6) as i64)
}

fn eval_with(n: &Node, env: &Env, mask: u32) -> Result<Val, EvalError> {
    let mut ev = Evaluator::with_mask(env, mask);
    ev.eval(n)
}

/// A decimal literal as written (`0.3333`, `-4.12`): its value and number of decimals.
fn decimal_literal(n: &Node) -> Option<(BigRational, u32)> {
    match n {
        Node::Num(r, d) if *d >= 2 => Some((r.clone(), *d)),
        Node::Neg(a) => decimal_literal(a).map(|(r, d)| (-r, d)),
        _ => None,
    }
}

/// A decimal written to `d` places matches a non-terminating value that rounds to it.
fn rounds_to(lit: &(BigRational, u32), other: &Val) -> bool {
    if let Val::Exact(r) = other
        && is_terminating(r)
    {
        return false;
    }
    let Ok(o) = other.approx_checked() else {
        return false;
    };
    if !o.is_real() {
        return false;
    }
    let l = crate::value::rat_to_f64(&lit.0);
    let tol = 0.5 * 10f64.powi(-(lit.1 as i32)) + 1e-12 * l.abs();
    (o.re - l).abs() <= tol
}

/// `m \times 10^{k}` with a decimal mantissa of `d ≥ 2` places: its value and half a unit in
/// its last place, `10^{k-d} / 2`.
fn sci_literal(n: &Node) -> Option<(BigRational, BigRational)> {
    let Node::Mul(fs) = n else { return None };
    let [(false, Node::Num(m, d)), (false, Node::Pow(b, e))] = fs.as_slice() else {
        return None;
    };
    let ten = BigRational::from_integer(BigInt::from(10));
    if *d < 2 || !matches!(&**b, Node::Num(t, 0) if *t == ten) {
        return None;
    }
    let k = match &**e {
        Node::Num(k, 0) => k.clone(),
        Node::Neg(k) => match &**k {
            Node::Num(k, 0) => -k.clone(),
            _ => return None,
        },
        _ => return None,
    };
    let k = num_traits::ToPrimitive::to_i32(&k.to_integer()).filter(|k| k.abs() <= 400)?;
    let p = |e: i32| num_traits::pow::pow(ten.clone(), e.unsigned_abs() as usize);
    let scale = |e: i32| if e >= 0 { p(e) } else { p(e).recip() };
    let half = scale(k - *d as i32) / BigRational::from_integer(BigInt::from(2));
    Some((m * scale(k), half))
}

/// A computed exact value far beyond a float's exact range (`100!`, `2^{200}`) against the same
/// value written in scientific notation with a mantissa of two or more places
/// (`9.332621544394415 \times 10^{157}`): equal when the value rounds to that mantissa, compared
/// exactly, so it works past `f64`'s range too (`200!` ≈ `7.886578673647905 \times 10^{374}`).
/// A written integer (`120000000000000000001`) is not a computed value and keeps exact
/// comparison, and so does anything under 2^53.
fn sci_matches(lit: &Node, other: &Node, y: &Val) -> bool {
    let (Some((v, half)), Val::Exact(y)) = (sci_literal(lit), y) else {
        return false;
    };
    let limit = BigRational::from_integer(BigInt::from(1u64 << 53));
    !matches!(other, Node::Num(..)) && num_traits::Signed::abs(y) > limit && {
        let d = y - &v;
        num_traits::Signed::abs(&d) <= half
    }
}

/// The values `x` of `a` and `y` of `b`, two constants, under the declared tolerance.
fn num_eq(o: &GradeOptions, a: &Node, x: &Val, b: &Node, y: &Val) -> bool {
    if val_eq(x, y) {
        return true;
    }
    if o.tolerance != Tolerance::Exact && (sci_matches(a, b, y) || sci_matches(b, a, x)) {
        return true;
    }
    match o.tolerance {
        Tolerance::Exact => false,
        Tolerance::Rounded => {
            decimal_literal(a).is_some_and(|l| rounds_to(&l, y))
                || decimal_literal(b).is_some_and(|l| rounds_to(&l, x))
        }
        Tolerance::Relative(rel) => match (x, y) {
            // Exactly, so that values past `f64`'s range compare too.
            (Val::Exact(p), Val::Exact(q)) => BigRational::from_float(rel.get()).is_some_and(|r| {
                use num_traits::Signed;
                (p - q).abs() <= r * p.abs().max(q.abs())
            }),
            _ => match (x.approx_checked(), y.approx_checked()) {
                (Ok(p), Ok(q)) => crate::value::c_close(p, q, rel.get()),
                _ => false,
            },
        },
    }
}

fn node_eq(o: &GradeOptions, a: &Node, am: u32, b: &Node, bm: u32) -> bool {
    if am == u32::MAX || bm == u32::MAX {
        return false;
    }
    if has_inf(a) || has_inf(b) {
        return a == b && am == bm;
    }
    let mut syms = BTreeSet::new();
    free_syms(a, &mut syms);
    free_syms(b, &mut syms);
    if syms.is_empty() {
        let env = Env::new();
        return match (eval_with(a, &env, am), eval_with(b, &env, bm)) {
            (Ok(x), Ok(y)) => num_eq(o, a, &x, b, &y),
            _ => a == b && am == bm,
        };
    }
    let mut ok = 0;
    // Rational points first; small integers when those fail (symbolic sum bounds, indices).
    for r in 0..2 * ROUNDS {
        if r == ROUNDS && ok > 0 {
            break;
        }
        let env: Env = syms
            .iter()
            .map(|s| {
                (
                    s.clone(),
                    if r < ROUNDS {
                        point(s, r)
                    } else {
                        int_point(s, r)
                    },
                )
            })
            .collect();
        match (eval_with(a, &env, am), eval_with(b, &env, bm)) {
            (Ok(x), Ok(y)) => {
                if !val_eq(&x, &y) {
                    return false;
                }
                ok += 1;
            }
            (Err(_), Err(_)) => {}
            _ => return false,
        }
    }
    if ok >= 2 { true } else { a == b && am == bm }
}

fn val_of(a: &Ans) -> Option<(&Node, u32)> {
    match a {
        Ans::Scalar { node, mask, .. } => Some((node, *mask)),
        _ => None,
    }
}

fn scalar_eq(o: &GradeOptions, a: &Ans, b: &Ans) -> bool {
    match (a, b) {
        (Ans::Value(x), Ans::Value(y)) => val_eq(x, y),
        (
            Ans::Value(x),
            Ans::Scalar {
                node,
                mask,
                percent: false,
            },
        )
        | (
            Ans::Scalar {
                node,
                mask,
                percent: false,
            },
            Ans::Value(x),
        ) => eval_with(node, &Env::new(), *mask).is_ok_and(|y| val_eq(x, &y)),
        (
            Ans::Scalar {
                node: x,
                percent: px,
                mask: mx,
            },
            Ans::Scalar {
                node: y,
                percent: py,
                mask: my,
            },
        ) => {
            if px == py {
                return node_eq(o, x, *mx, y, *my);
            }
            // Only one side carries `%`: 28% matches 28, and also 0.28.
            let (p, pm, q, qm) = if *px {
                (x, *mx, y, *my)
            } else {
                (y, *my, x, *mx)
            };
            node_eq(o, p, pm, q, qm) || node_eq(o, &percent_value(p), pm, q, qm)
        }
        _ => false,
    }
}

/// `p%` as a number; a decimal literal stays a literal (`16.67%` → 0.1667, 4 places).
fn percent_value(p: &Node) -> Node {
    let hundred = BigRational::from_integer(100.into());
    match decimal_literal(p) {
        Some((r, d)) => Node::Num(r / hundred, d + 2),
        None => Node::Mul(vec![(false, p.clone()), (true, Node::Num(hundred, 0))]),
    }
}

fn seq_eq(o: &GradeOptions, xs: &[Ans], ys: &[Ans]) -> bool {
    xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| ans_eq(o, x, y))
}

/// Multiset match (greedy; answers are small).
fn bag_eq(o: &GradeOptions, xs: &[Ans], ys: &[Ans]) -> bool {
    if xs.len() != ys.len() {
        return false;
    }
    let mut used = vec![false; ys.len()];
    'outer: for x in xs {
        for (j, y) in ys.iter().enumerate() {
            if !used[j] && ans_eq(o, x, y) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Set match: every element of each side occurs in the other.
fn set_eq(o: &GradeOptions, xs: &[Ans], ys: &[Ans]) -> bool {
    if xs.is_empty() && ys.is_empty() {
        return true;
    }
    !xs.is_empty()
        && !ys.is_empty()
        && xs.iter().all(|x| ys.iter().any(|y| ans_eq(o, x, y)))
        && ys.iter().all(|y| xs.iter().any(|x| ans_eq(o, x, y)))
}

fn bound_eq(o: &GradeOptions, a: &Ans, b: &Ans) -> bool {
    match (a, b) {
        (Ans::NegInf, Ans::NegInf) | (Ans::PosInf, Ans::PosInf) => true,
        (Ans::NegInf | Ans::PosInf, _) | (_, Ans::NegInf | Ans::PosInf) => false,
        _ => scalar_eq(o, a, b),
    }
}

fn rel_eq(f: &Node, fo: RelOp, g: &Node, go: RelOp) -> bool {
    if fo != go {
        return false;
    }
    // f and g must be proportional (positively so for inequalities).
    let mut syms = BTreeSet::new();
    free_syms(f, &mut syms);
    free_syms(g, &mut syms);
    let mut ratio: Option<Val> = None;
    let mut ok = 0;
    for r in 0..ROUNDS {
        let env: Env = syms.iter().map(|s| (s.clone(), point(s, r))).collect();
        let (Ok(x), Ok(y)) = (eval_with(f, &env, 0), eval_with(g, &env, 0)) else {
            continue;
        };
        if y.is_zero() || x.is_zero() {
            if !(val_eq(&x, &crate::value::int(0)) && val_eq(&y, &crate::value::int(0))) {
                return false;
            }
            continue;
        }
        let Ok(q) = x.div(&y) else { return false };
        match &ratio {
            None => {
                if matches!(fo, RelOp::Gt | RelOp::Ge) && !q.real().is_some_and(|v| v > 0.0) {
                    return false;
                }
                ratio = Some(q);
            }
            Some(r0) => {
                if !val_eq(r0, &q) {
                    return false;
                }
            }
        }
        ok += 1;
    }
    ok >= 2 || f == g
}

/// Structural equality of two answer shapes.
pub fn ans_eq(o: &GradeOptions, a: &Ans, b: &Ans) -> bool {
    match (a, b) {
        (Ans::Seq(x), Ans::Seq(y)) => {
            seq_eq(o, x, y) || (o.list_order == ListOrder::Any && bag_eq(o, x, y))
        }
        (Ans::Seq(x), _) => ans_eq(o, &Ans::List(x.clone()), b),
        (_, Ans::Seq(y)) => ans_eq(o, a, &Ans::List(y.clone())),
        (Ans::Record(x), Ans::Record(y)) => record_eq(o, x, y),
        (Ans::Record(x), _) => ans_eq(o, &record_values(x), b),
        (_, Ans::Record(y)) => ans_eq(o, a, &record_values(y)),
        (Ans::Rel(f, op), other) | (other, Ans::Rel(f, op))
            if matches!(other, Ans::Interval(..) | Ans::Union(_) | Ans::List(_))
                || matches!(other, Ans::Tuple(t) if t.len() == 2) =>
        {
            truth_set_eq(f, *op, other)
        }
        (Ans::List(x), _) if x.len() == 1 => ans_eq(o, &x[0], b),
        (_, Ans::List(y)) if y.len() == 1 => ans_eq(o, a, &y[0]),
        (Ans::List(x), Ans::List(y)) => bag_eq(o, x, y) || (x.len() == y.len() && seq_eq(o, x, y)),
        (_, Ans::List(y)) if y.len() == 1 => ans_eq(o, a, &y[0]),
        (Ans::List(x), Ans::Tuple(y)) | (Ans::Tuple(y), Ans::List(x)) => seq_eq(o, x, y),
        (Ans::List(x), Ans::Set(y)) | (Ans::Set(x), Ans::List(y)) | (Ans::Set(x), Ans::Set(y)) => {
            set_eq(o, x, y)
        }
        (Ans::Tuple(x), Ans::Tuple(y)) => seq_eq(o, x, y),
        (Ans::Tuple(x), Ans::Interval(lo, hi, lc, rc))
        | (Ans::Interval(lo, hi, lc, rc), Ans::Tuple(x)) => {
            x.len() == 2 && !lc && !rc && bound_eq(o, &x[0], lo) && bound_eq(o, &x[1], hi)
        }
        (Ans::Interval(a0, a1, al, ar), Ans::Interval(b0, b1, bl, br)) => {
            al == bl && ar == br && bound_eq(o, a0, b0) && bound_eq(o, a1, b1)
        }
        (Ans::Union(x), Ans::Union(y)) => bag_eq(o, x, y),
        // `x ≤ -3 or x ≥ 2` is a list of intervals.
        (Ans::Union(x), Ans::List(y)) | (Ans::List(y), Ans::Union(x)) => bag_eq(o, x, y),
        (Ans::Union(x), _) if x.len() == 1 => ans_eq(o, &x[0], b),
        (_, Ans::Union(y)) if y.len() == 1 => ans_eq(o, a, &y[0]),
        (Ans::Matrix(x), Ans::Matrix(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(r, s)| seq_eq(o, r, s))
        }
        (Ans::Matrix(m), Ans::Tuple(t)) | (Ans::Tuple(t), Ans::Matrix(m)) => {
            let flat: Vec<Ans> = if m.iter().all(|r| r.len() == 1) {
                m.iter().map(|r| r[0].clone()).collect()
            } else if m.len() == 1 {
                m[0].clone()
            } else {
                return false;
            };
            seq_eq(o, &flat, t)
        }
        (Ans::Rel(f, fo), Ans::Rel(g, go)) => rel_eq(f, *fo, g, *go),
        (Ans::Text(x), Ans::Text(y)) => loose(x) == loose(y),
        // `\{\}` is the empty set `∅`.
        (Ans::Set(v), Ans::Text(t)) | (Ans::Text(t), Ans::Set(v)) => v.is_empty() && t == "∅",
        (Ans::NegInf, Ans::NegInf) | (Ans::PosInf, Ans::PosInf) => true,
        (Ans::Scalar { .. } | Ans::Value(_), Ans::Scalar { .. } | Ans::Value(_)) => {
            if let (Some((x, _)), Some((y, _))) = (val_of(a), val_of(b))
                && let (Node::Text(_), _) | (_, Node::Text(_)) = (x, y)
            {
                return false;
            }
            scalar_eq(o, a, b)
        }
        _ => false,
    }
}

/// Two records with the same labels match label by label, whatever their order; with different
/// labels (`x = 1, y = 2` against `a = 1, b = 2`) their values match in the written order.
fn record_eq(o: &GradeOptions, x: &[(String, Ans)], y: &[(String, Ans)]) -> bool {
    if x.len() != y.len() {
        return false;
    }
    let same_labels = x
        .iter()
        .all(|(l, _)| y.iter().filter(|(m, _)| m == l).count() == 1);
    if same_labels {
        return x
            .iter()
            .all(|(l, v)| y.iter().any(|(m, w)| m == l && ans_eq(o, v, w)));
    }
    x.iter().zip(y).all(|((_, v), (_, w))| ans_eq(o, v, w))
}

fn record_values(x: &[(String, Ans)]) -> Ans {
    Ans::Tuple(x.iter().map(|(_, v)| v.clone()).collect())
}

/// Finite end of an interval bound, `None` for ±∞, `Err` when it does not evaluate.
fn bound_val(b: &Ans) -> Result<Option<Val>, ()> {
    match b {
        Ans::NegInf | Ans::PosInf => Ok(None),
        Ans::Value(v) => Ok(Some(v.clone())),
        Ans::Scalar {
            node,
            mask,
            percent: false,
        } => eval_with(node, &Env::new(), *mask)
            .map(Some)
            .map_err(|_| ()),
        _ => Err(()),
    }
}

type Piece = (Option<Val>, Option<Val>, bool, bool);

/// Grid points per gap between interval endpoints in [`truth_set_eq`].
const GRID: i64 = 48;

/// The intervals of an interval, union or list of intervals.
fn pieces(a: &Ans, out: &mut Vec<Piece>) -> Result<(), ()> {
    match a {
        Ans::Interval(lo, hi, lc, rc) => {
            out.push((bound_val(lo)?, bound_val(hi)?, *lc, *rc));
            Ok(())
        }
        Ans::Union(v) | Ans::List(v) => v.iter().try_for_each(|x| pieces(x, out)),
        // `(a, b)` read as the open interval.
        Ans::Tuple(v) if v.len() == 2 => {
            out.push((bound_val(&v[0])?, bound_val(&v[1])?, false, false));
            Ok(())
        }
        _ => Err(()),
    }
}

fn real_of(v: &Val) -> Option<f64> {
    v.approx_checked()
        .ok()
        .filter(|c| c.is_real())
        .map(|c| c.re)
}

fn in_piece(x: &Val, (lo, hi, lc, rc): &Piece) -> bool {
    let Some(xr) = real_of(x) else { return false };
    let above = match lo {
        None => true,
        Some(l) => {
            if val_eq(x, l) {
                *lc
            } else {
                real_of(l).is_some_and(|l| xr > l)
            }
        }
    };
    let below = match hi {
        None => true,
        Some(h) => {
            if val_eq(x, h) {
                *rc
            } else {
                real_of(h).is_some_and(|h| xr < h)
            }
        }
    };
    above && below
}

/// Does `f(x) op 0` hold at `x`? Outside the domain of `f` it does not.
/// Node visits spent in `rel_holds` are added to `spent`.
fn rel_holds(f: &Node, var: &str, op: RelOp, x: &Val, spent: &mut u32) -> bool {
    let mut env = Env::new();
    env.insert(var.to_string(), x.clone());
    let mut ev = Evaluator::with_mask(&env, 0);
    let v = ev.eval(f);
    *spent = spent.saturating_add(ev.steps());
    let Ok(v) = v else {
        return false;
    };
    let Ok(c) = v.approx_checked() else {
        return false;
    };
    if !c.is_real() {
        return false;
    }
    // A floating value this close to 0 at an irrational endpoint is 0.
    let zero = v.is_zero() || (matches!(v, Val::Approx(_)) && c.re.abs() < 1e-9);
    match op {
        RelOp::Gt => !zero && c.re > 0.0,
        RelOp::Ge => zero || c.re > 0.0,
        RelOp::Eq => zero,
        RelOp::Ne => !zero,
        _ => false,
    }
}

/// A one-variable relation `f(x) op 0` (`x^2 - 4x + 3 > 0`, `|x| \ge 3`, `x \ne 1`) against
/// an interval or a union of intervals: equal when both hold at the same sample points.
///
/// The points are every finite endpoint (exactly, so that open and closed ends are told apart),
/// every integer and a grid of 48 points inside each gap between consecutive endpoints, and
/// points 1/2, 1, 2, 5, 10, 100 and 1000 beyond the outermost ones. This decides correctly
/// whenever the sign changes of `f` that the interval answer misses are not squeezed between
/// two grid points, which holds for the polynomial, rational and absolute-value inequalities
/// answers come from (their roots are usually integers or simple numbers). It must not equate
/// a relation with more than one variable (refused), nor sets that differ on a stretch of the
/// line wider than the grid step, nor open with closed ends (the endpoint sample catches it).
fn truth_set_eq(f: &Node, op: RelOp, set: &Ans) -> bool {
    let mut syms = BTreeSet::new();
    free_syms(f, &mut syms);
    if syms.len() != 1 || !matches!(op, RelOp::Gt | RelOp::Ge | RelOp::Ne) {
        return false;
    }
    let Some(var) = syms.into_iter().next() else {
        return false;
    };
    let mut ps = Vec::new();
    if pieces(set, &mut ps).is_err() || ps.is_empty() || ps.len() > 16 {
        return false;
    }
    let mut ends: Vec<(f64, Val)> = Vec::new();
    for (lo, hi, _, _) in &ps {
        for v in [lo, hi].into_iter().flatten() {
            match real_of(v) {
                Some(r) => ends.push((r, v.clone())),
                None => return false,
            }
        }
    }
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    ends.dedup_by(|a, b| val_eq(&a.1, &b.1));
    let int = crate::value::int;
    let mut points: Vec<Val> = Vec::new();
    match (ends.first(), ends.last()) {
        (Some((_, first)), Some((_, last))) => {
            let half = Val::Exact(BigRational::new(BigInt::from(1), BigInt::from(2)));
            points.extend(first.sub(&half));
            points.extend(last.add(&half));
            for d in [1, 2, 5, 10, 100, 1000] {
                points.extend(first.sub(&int(d)));
                points.extend(last.add(&int(d)));
            }
        }
        _ => points.extend([-1000, -1, 0, 1, 1000].map(int)),
    }
    for (_, e) in &ends {
        points.push(e.clone());
    }
    for w in ends.windows(2) {
        let ((ar, a), (br, b)) = (&w[0], &w[1]);
        for k in 1..GRID {
            let t = Val::Exact(BigRational::new(BigInt::from(k), BigInt::from(GRID)));
            if let Ok(p) = b.sub(a).and_then(|d| d.mul(&t)).and_then(|d| a.add(&d)) {
                points.push(p);
            }
        }
        if br - ar <= 200.0 {
            let mut k = ar.floor() as i64 + 1;
            while (k as f64) < *br {
                points.push(int(k));
                k += 1;
            }
        }
    }
    // All sample points together get the budget of one evaluation: a heavy `f` (a long sum)
    // makes the comparison give up (unequal) rather than take long.
    let mut spent = 0u32;
    points.iter().all(|x| {
        spent <= crate::eval::STEP_BUDGET
            && rel_holds(f, &var, op, x, &mut spent) == ps.iter().any(|p| in_piece(x, p))
    })
}

/// All readings of an answer string (several when number formatting is ambiguous).
///
/// An equation whose left side is a name (`y = 2x + 1`, `x = 3`) reads as its right side and
/// also as the relation `y - (2x + 1) = 0`, so that it matches the same line written in another
/// form (`2x - y + 1 = 0`, `x - 3 = 0`). A relation only ever equals another relation (or, for one
/// variable, an interval), so the extra reading cannot make `x = 3` equal to `y = 4`. A list whose items are joined by "and"/"or" is a list of alternatives.
pub fn readings(s: &str) -> Vec<Ans> {
    let mut out = Vec::new();
    for r in number_readings(s) {
        if let Ok(n) = parse(&r) {
            let mut a = one_or_list(to_ans(&n));
            if let Ans::Seq(v) = a {
                a = if crate::parse::joined_by_words(&r) {
                    Ans::List(v)
                } else {
                    Ans::Seq(v)
                };
            }
            out.push(a);
            if let Node::Rel(parts, ops) = &n
                && ops.as_slice() == [RelOp::Eq]
                && is_eq_label(&parts[0])
                && (!is_constant(&parts[1]) || matches!(parts[0], Node::Sym(_)))
            {
                out.push(Ans::Rel(sub(&parts[0], &parts[1]), RelOp::Eq));
            }
        }
    }
    out
}

/// Braces and parentheses used loosely. When the reference answer is a set (`\{1, 3\}`), a
/// tuple with the same elements (`(1, 3)`, `(3, 1)`) is that set written loosely. When the
/// reference is a tuple (`(1, 2)`), a set written with the same elements in the same order
/// (`\{1, 2\}`) is accepted, as Math-Verify does; in another order (`\{2, 1\}`) it is not,
/// because the order of the tuple is part of the answer. Two tuples still compare in order.
fn set_written_as_tuple(o: &GradeOptions, gold: &Ans, pred: &Ans) -> bool {
    match (gold, pred) {
        (Ans::Set(x), Ans::Tuple(y)) => set_eq(o, x, y),
        (Ans::Tuple(x), Ans::Set(y)) => seq_eq(o, x, y),
        _ => false,
    }
}

/// Are two bare answers the same, under the default conventions ([`GradeOptions::DEFAULT`])?
pub fn answers_equal(a: &str, b: &str) -> bool {
    answers_equal_with(a, b, &GradeOptions::DEFAULT)
}

/// Are two bare answers the same under the conventions `o`? `a` is the reference (the gold
/// answer): the only directed rule is [`set_written_as_tuple`]; everything else is symmetric.
pub fn answers_equal_with(a: &str, b: &str, o: &GradeOptions) -> bool {
    let (ca, cb) = (clean_answer(a), clean_answer(b));
    if ca.is_empty() || cb.is_empty() {
        return false;
    }
    if o.units == Units::MustMatch && crate::parse::units(&ca) != crate::parse::units(&cb) {
        return false;
    }
    if ca == cb {
        return true;
    }
    if let Some(same) = crate::normalize::same_time_of_day(&ca, &cb) {
        return same;
    }
    let (ra, rb) = (readings(&ca), readings(&cb));
    if ra.is_empty() || rb.is_empty() {
        let (la, lb) = (loose(&ca), loose(&cb));
        return !la.is_empty() && la == lb;
    }
    ra.iter().any(|x| {
        rb.iter()
            .any(|y| ans_eq(o, x, y) || set_written_as_tuple(o, x, y))
    }) || loose(&ca) == loose(&cb)
}
