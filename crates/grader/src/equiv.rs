//! Answer equivalence: turns parse trees into answer shapes (scalars, tuples, lists, sets,
//! intervals, matrices, relations, text) and compares them, exactly where possible and by
//! evaluation at deterministic random points otherwise.

use std::collections::BTreeSet;

use num_bigint::BigInt;
use num_rational::BigRational;

use crate::eval::{Env, Evaluator};
use crate::normalize::{clean_answer, loose, number_readings};
use crate::parse::{Node, RelOp, parse};
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
    /// A bare list (top-level commas): order-free, or ordered against a tuple.
    List(Vec<Ans>),
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

fn has_inf(n: &Node) -> bool {
    matches!(n, Node::Inf) || children(n).into_iter().any(has_inf)
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
        Node::List(items) => vec![one_or_list(list_items(items))],
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
        _ => scalar(n.clone()),
    }
}

/// Items of a bare list, with `x = 1, y = 2` assignments grouped.
fn list_items(items: &[Node]) -> Vec<Ans> {
    let mut labels: Vec<Option<String>> = Vec::new();
    let mut values: Vec<Vec<Ans>> = Vec::new();
    let mut any_label = false;
    for it in items {
        if let Node::Rel(parts, ops) = it
            && ops.len() == 1
            && ops[0] == RelOp::Eq
            && is_label(&parts[0])
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
    if any_label {
        let names: Vec<&String> = labels.iter().flatten().collect();
        let distinct: BTreeSet<&String> = names.iter().copied().collect();
        if names.len() == labels.len()
            && distinct.len() == names.len()
            && names.len() >= 2
            && values.iter().all(|v| v.len() == 1)
        {
            // `p = 5, q = 2` is the tuple (5, 2).
            return vec![Ans::Tuple(values.into_iter().flatten().collect())];
        }
    }
    values.into_iter().flatten().collect()
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
    // Approximations are annotations: `x = 1/3 ≈ 0.33` means `x = 1/3`.
    let cut = if ops.iter().all(|o| *o == RelOp::Approx) {
        ops.len()
    } else {
        ops.iter()
            .position(|o| *o == RelOp::Approx)
            .unwrap_or(ops.len())
    };
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
        if parts.len() >= 3 || is_label(lhs) || parts.iter().all(is_constant) {
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
    let (f0, f1, f3) = (at(0)?, at(1)?, at(3)?);
    let slope = f1.sub(&f0).ok()?;
    if slope.is_zero() || !val_eq(&f3.sub(&f0).ok()?, &slope.mul(&crate::value::int(3)).ok()?) {
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

fn node_eq(a: &Node, am: u32, b: &Node, bm: u32) -> bool {
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
            (Ok(x), Ok(y)) => {
                val_eq(&x, &y)
                    || decimal_literal(a).is_some_and(|l| rounds_to(&l, &y))
                    || decimal_literal(b).is_some_and(|l| rounds_to(&l, &x))
            }
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

fn scalar_eq(a: &Ans, b: &Ans) -> bool {
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
                return node_eq(x, *mx, y, *my);
            }
            // Only one side carries `%`: 28% matches 28, and also 0.28.
            let (p, pm, q, qm) = if *px {
                (x, *mx, y, *my)
            } else {
                (y, *my, x, *mx)
            };
            node_eq(p, pm, q, qm) || node_eq(&percent_value(p), pm, q, qm)
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

fn seq_eq(xs: &[Ans], ys: &[Ans]) -> bool {
    xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| ans_eq(x, y))
}

/// Multiset match (greedy; answers are small).
fn bag_eq(xs: &[Ans], ys: &[Ans]) -> bool {
    if xs.len() != ys.len() {
        return false;
    }
    let mut used = vec![false; ys.len()];
    'outer: for x in xs {
        for (j, y) in ys.iter().enumerate() {
            if !used[j] && ans_eq(x, y) {
                used[j] = true;
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Set match: every element of each side occurs in the other.
fn set_eq(xs: &[Ans], ys: &[Ans]) -> bool {
    if xs.is_empty() && ys.is_empty() {
        return true;
    }
    !xs.is_empty()
        && !ys.is_empty()
        && xs.iter().all(|x| ys.iter().any(|y| ans_eq(x, y)))
        && ys.iter().all(|y| xs.iter().any(|x| ans_eq(x, y)))
}

fn bound_eq(a: &Ans, b: &Ans) -> bool {
    match (a, b) {
        (Ans::NegInf, Ans::NegInf) | (Ans::PosInf, Ans::PosInf) => true,
        (Ans::NegInf | Ans::PosInf, _) | (_, Ans::NegInf | Ans::PosInf) => false,
        _ => scalar_eq(a, b),
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
pub fn ans_eq(a: &Ans, b: &Ans) -> bool {
    match (a, b) {
        (Ans::List(x), _) if x.len() == 1 => ans_eq(&x[0], b),
        (_, Ans::List(y)) if y.len() == 1 => ans_eq(a, &y[0]),
        (Ans::List(x), Ans::List(y)) => bag_eq(x, y) || (x.len() == y.len() && seq_eq(x, y)),
        (_, Ans::List(y)) if y.len() == 1 => ans_eq(a, &y[0]),
        (Ans::List(x), Ans::Tuple(y)) | (Ans::Tuple(y), Ans::List(x)) => seq_eq(x, y),
        (Ans::List(x), Ans::Set(y)) | (Ans::Set(x), Ans::List(y)) | (Ans::Set(x), Ans::Set(y)) => {
            set_eq(x, y)
        }
        (Ans::Tuple(x), Ans::Tuple(y)) => seq_eq(x, y),
        (Ans::Tuple(x), Ans::Interval(lo, hi, lc, rc))
        | (Ans::Interval(lo, hi, lc, rc), Ans::Tuple(x)) => {
            x.len() == 2 && !lc && !rc && bound_eq(&x[0], lo) && bound_eq(&x[1], hi)
        }
        (Ans::Interval(a0, a1, al, ar), Ans::Interval(b0, b1, bl, br)) => {
            al == bl && ar == br && bound_eq(a0, b0) && bound_eq(a1, b1)
        }
        (Ans::Union(x), Ans::Union(y)) => bag_eq(x, y),
        // `x ≤ -3 or x ≥ 2` is a list of intervals.
        (Ans::Union(x), Ans::List(y)) | (Ans::List(y), Ans::Union(x)) => bag_eq(x, y),
        (Ans::Union(x), _) if x.len() == 1 => ans_eq(&x[0], b),
        (_, Ans::Union(y)) if y.len() == 1 => ans_eq(a, &y[0]),
        (Ans::Matrix(x), Ans::Matrix(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(r, s)| seq_eq(r, s))
        }
        (Ans::Matrix(m), Ans::Tuple(t)) | (Ans::Tuple(t), Ans::Matrix(m)) => {
            let flat: Vec<Ans> = if m.iter().all(|r| r.len() == 1) {
                m.iter().map(|r| r[0].clone()).collect()
            } else if m.len() == 1 {
                m[0].clone()
            } else {
                return false;
            };
            seq_eq(&flat, t)
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
            scalar_eq(a, b)
        }
        _ => false,
    }
}

/// All readings of an answer string (several when number formatting is ambiguous).
pub fn readings(s: &str) -> Vec<Ans> {
    let mut out = Vec::new();
    for r in number_readings(s) {
        if let Ok(n) = parse(&r) {
            out.push(one_or_list(to_ans(&n)));
        }
    }
    out
}

/// Are two bare answers the same?
pub fn answers_equal(a: &str, b: &str) -> bool {
    let (ca, cb) = (clean_answer(a), clean_answer(b));
    if ca.is_empty() || cb.is_empty() {
        return false;
    }
    if ca == cb {
        return true;
    }
    let (ra, rb) = (readings(&ca), readings(&cb));
    if ra.is_empty() || rb.is_empty() {
        let (la, lb) = (loose(&ca), loose(&cb));
        return !la.is_empty() && la == lb;
    }
    ra.iter().any(|x| rb.iter().any(|y| ans_eq(x, y))) || loose(&ca) == loose(&cb)
}
