//! Matrix expressions with constant entries: sums, scalar multiples, products, integer powers,
//! transposes, inverses and the identity `I` (`I_n`), reduced to the matrix they denote; and
//! determinants.
//!
//! Why: an answer may be written as an expression (`2I + A`, `A^T`, `\begin{pmatrix}…\end{pmatrix}
//! \begin{pmatrix}…\end{pmatrix}`) while the gold is its value. What it must not equate: a product
//! is taken in the written order (matrix products do not commute), shapes must agree for every
//! sum and product (a mismatch is not a matrix, so the answer stays unequal to any matrix), and
//! only constant entries are reduced, so nothing about unknown symbols is assumed.

use crate::eval::{Env, eval};
use crate::parse::Node;
use crate::value::{EvalError, Val, int};

/// Largest side handled (keeps products and eliminations small).
const MAX_SIDE: usize = 8;
/// Largest power `A^k` expanded by repeated multiplication.
const MAX_POWER: i64 = 32;

pub type Mat = Vec<Vec<Val>>;

/// The value of a matrix expression.
#[derive(Debug, Clone)]
enum M {
    Scalar(Val),
    /// `c I`: the identity of whatever size the context needs, times `c`.
    Identity(Val),
    Mat(Mat),
}

/// Does `n` contain a matrix literal anywhere?
pub fn has_matrix(n: &Node) -> bool {
    matches!(n, Node::Matrix(_)) || crate::equiv::children(n).into_iter().any(has_matrix)
}

/// Reduce a matrix expression to its matrix (`None` when it is not one with constant entries).
pub fn reduce(n: &Node) -> Option<Mat> {
    match go(n).ok()? {
        M::Mat(m) => Some(m),
        _ => None,
    }
}

fn is_identity_name(s: &str) -> bool {
    s == "I"
        || s.strip_prefix("I_")
            .is_some_and(|k| k.chars().all(|c| c.is_ascii_digit()))
}

fn go(n: &Node) -> Result<M, EvalError> {
    match n {
        Node::Matrix(rows) => {
            if rows.len() > MAX_SIDE || rows.iter().any(|r| r.len() > MAX_SIDE) {
                return Err(EvalError::TooBig);
            }
            let env = Env::new();
            let mut m = Vec::with_capacity(rows.len());
            for r in rows {
                m.push(r.iter().map(|x| eval(x, &env)).collect::<Result<_, _>>()?);
            }
            Ok(M::Mat(m))
        }
        Node::Sym(s) if is_identity_name(s) => Ok(M::Identity(int(1))),
        Node::Neg(a) => scale(&go(a)?, &int(-1)),
        Node::Add(terms) => {
            let mut acc: Option<M> = None;
            for (neg, t) in terms {
                let mut v = go(t)?;
                if *neg {
                    v = scale(&v, &int(-1))?;
                }
                acc = Some(match acc {
                    None => v,
                    Some(a) => add(&a, &v)?,
                });
            }
            acc.ok_or(EvalError::Unsupported)
        }
        Node::Mul(factors) => {
            let mut acc = M::Scalar(int(1));
            for (div, f) in factors {
                let v = go(f)?;
                acc = if *div {
                    match v {
                        M::Scalar(s) => scale(&acc, &int(1).div(&s)?)?,
                        _ => return Err(EvalError::Unsupported),
                    }
                } else {
                    mul(&acc, &v)?
                };
            }
            Ok(acc)
        }
        Node::Pow(b, e) => {
            let base = go(b)?;
            let M::Mat(m) = base else {
                return if has_matrix(b) {
                    Err(EvalError::Unsupported)
                } else {
                    Ok(M::Scalar(eval(n, &Env::new())?))
                };
            };
            if let Node::Sym(t) = &**e
                && matches!(t.as_str(), "T" | "\\top" | "t" | "\\intercal")
            {
                return Ok(M::Mat(transpose(&m)));
            }
            let k = eval(e, &Env::new())?;
            let k = k
                .exact()
                .filter(|r| r.is_integer())
                .and_then(|r| num_traits::ToPrimitive::to_i64(&r.to_integer()))
                .ok_or(EvalError::Unsupported)?;
            if k.abs() > MAX_POWER || m.len() != m[0].len() {
                return Err(EvalError::Unsupported);
            }
            let base = if k < 0 { inverse(&m)? } else { m };
            let n = base.len();
            let mut acc = M::Mat(
                (0..n)
                    .map(|i| (0..n).map(|j| int(i64::from(i == j))).collect())
                    .collect(),
            );
            for _ in 0..k.abs() {
                acc = mul(&acc, &M::Mat(base.clone()))?;
            }
            Ok(acc)
        }
        _ if has_matrix(n) => Err(EvalError::Unsupported),
        _ => Ok(M::Scalar(eval(n, &Env::new())?)),
    }
}

fn scale(a: &M, c: &Val) -> Result<M, EvalError> {
    Ok(match a {
        M::Scalar(s) => M::Scalar(s.mul(c)?),
        M::Identity(s) => M::Identity(s.mul(c)?),
        M::Mat(m) => M::Mat(
            m.iter()
                .map(|r| r.iter().map(|x| x.mul(c)).collect())
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn identity_plus(m: &Mat, c: &Val) -> Result<Mat, EvalError> {
    if m.len() != m[0].len() {
        return Err(EvalError::Unsupported);
    }
    let mut out = m.clone();
    for (i, r) in out.iter_mut().enumerate() {
        r[i] = r[i].add(c)?;
    }
    Ok(out)
}

fn add(a: &M, b: &M) -> Result<M, EvalError> {
    match (a, b) {
        (M::Scalar(x), M::Scalar(y)) => Ok(M::Scalar(x.add(y)?)),
        (M::Identity(x), M::Identity(y)) => Ok(M::Identity(x.add(y)?)),
        (M::Identity(c), M::Mat(m)) | (M::Mat(m), M::Identity(c)) => {
            Ok(M::Mat(identity_plus(m, c)?))
        }
        (M::Mat(x), M::Mat(y)) => {
            if x.len() != y.len() || x[0].len() != y[0].len() {
                return Err(EvalError::Unsupported);
            }
            Ok(M::Mat(
                x.iter()
                    .zip(y)
                    .map(|(r, s)| r.iter().zip(s).map(|(p, q)| p.add(q)).collect())
                    .collect::<Result<_, _>>()?,
            ))
        }
        // A number plus a matrix is not defined.
        _ => Err(EvalError::Unsupported),
    }
}

fn mul(a: &M, b: &M) -> Result<M, EvalError> {
    match (a, b) {
        (M::Scalar(x), M::Scalar(y)) => Ok(M::Scalar(x.mul(y)?)),
        (M::Scalar(c), other) | (other, M::Scalar(c)) => scale(other, c),
        (M::Identity(x), M::Identity(y)) => Ok(M::Identity(x.mul(y)?)),
        (M::Identity(c), M::Mat(m)) | (M::Mat(m), M::Identity(c)) => scale(&M::Mat(m.clone()), c),
        (M::Mat(x), M::Mat(y)) => {
            if x[0].len() != y.len() {
                return Err(EvalError::Unsupported);
            }
            let mut out = Vec::with_capacity(x.len());
            for r in x {
                let mut row = Vec::with_capacity(y[0].len());
                for col in transpose(y) {
                    let mut acc = int(0);
                    for (v, w) in r.iter().zip(&col) {
                        acc = acc.add(&v.mul(w)?)?;
                    }
                    row.push(acc);
                }
                out.push(row);
            }
            Ok(M::Mat(out))
        }
    }
}

fn transpose(m: &Mat) -> Mat {
    (0..m[0].len())
        .map(|j| m.iter().map(|r| r[j].clone()).collect())
        .collect()
}

/// Gauss–Jordan elimination on `[m | I]`; `Domain` when `m` is singular.
fn inverse(m: &Mat) -> Result<Mat, EvalError> {
    let n = m.len();
    let mut a: Vec<Vec<Val>> = m
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = r.clone();
            row.extend((0..n).map(|j| int(i64::from(i == j))));
            row
        })
        .collect();
    for col in 0..n {
        let p = (col..n)
            .find(|&r| !a[r][col].is_zero())
            .ok_or(EvalError::Domain)?;
        a.swap(col, p);
        let piv = a[col][col].clone();
        a[col] = a[col]
            .iter()
            .map(|x| x.div(&piv))
            .collect::<Result<_, _>>()?;
        for r in 0..n {
            if r != col && !a[r][col].is_zero() {
                let f = a[r][col].clone();
                let pivot_row = a[col].clone();
                a[r] = a[r]
                    .iter()
                    .zip(&pivot_row)
                    .map(|(x, y)| x.sub(&y.mul(&f)?))
                    .collect::<Result<_, _>>()?;
            }
        }
    }
    Ok(a.into_iter().map(|r| r[n..].to_vec()).collect())
}

/// Determinant of a square matrix by elimination (exact for rational entries).
pub fn det(m: &Mat) -> Result<Val, EvalError> {
    let n = m.len();
    if n == 0 || n > MAX_SIDE || m.iter().any(|r| r.len() != n) {
        return Err(EvalError::Unsupported);
    }
    let mut a = m.clone();
    let mut d = int(1);
    for col in 0..n {
        let Some(p) = (col..n).find(|&r| !a[r][col].is_zero()) else {
            return Ok(int(0));
        };
        if p != col {
            a.swap(col, p);
            d = d.neg();
        }
        let piv = a[col][col].clone();
        d = d.mul(&piv)?;
        for r in col + 1..n {
            if !a[r][col].is_zero() {
                let f = a[r][col].div(&piv)?;
                let pivot_row = a[col].clone();
                a[r] = a[r]
                    .iter()
                    .zip(&pivot_row)
                    .map(|(x, y)| x.sub(&y.mul(&f)?))
                    .collect::<Result<_, _>>()?;
            }
        }
    }
    Ok(d)
}
