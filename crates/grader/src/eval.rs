//! Evaluation of expression trees to values, with a step budget.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use crate::parse::{Func, Node};
use crate::value::{self, C64, EvalError, Val, binom, factorial, int, modulo};

/// Largest denominator (in bits) a finite sum or product keeps exactly.
const DENOM_BITS: u64 = 256;

/// How far along a row of Pascal's triangle a binomial is walked from the last one computed.
const BINOM_WALK: u64 = 8;

/// Node visits allowed for one evaluation (bounds sums, integrals and products of sums).
pub const STEP_BUDGET: u32 = 200_000;

pub type Env = HashMap<String, Val>;

pub struct Evaluator<'a> {
    env: &'a Env,
    local: Vec<(String, Val)>,
    steps: u32,
    /// Bit k chooses the minus branch of the k-th `±` met during evaluation.
    mask: u32,
    pm_seen: u32,
    /// Inside a trigonometric function argument (degrees become radians).
    in_trig: u32,
    /// The last binomial computed, `(n, k, C(n, k))`, so that the next one along the row
    /// (`k ± 1`, as in `\sum_k \binom{n}{k}`) costs one multiplication and one division.
    last_binom: Option<(BigInt, BigInt, BigInt)>,
}

/// Evaluate `node` with the given symbol values.
pub fn eval(node: &Node, env: &Env) -> Result<Val, EvalError> {
    Evaluator::with_mask(env, 0).eval(node)
}

use value::checked as approx;

fn real_fn(v: &Val, f: fn(f64) -> f64) -> Result<Val, EvalError> {
    let x = v.approx_checked()?;
    if !x.is_real() {
        return Err(EvalError::Unsupported);
    }
    approx(C64::real(f(x.re)))
}

/// The value as a big integer, when it is an exact integer.
fn int_of(v: &Val) -> Option<BigInt> {
    v.exact().filter(|r| r.is_integer()).map(|r| r.to_integer())
}

fn to_int(v: &Val) -> Option<i64> {
    let r = v.exact()?;
    if r.is_integer() {
        r.to_integer().to_i64()
    } else {
        None
    }
}

impl<'a> Evaluator<'a> {
    /// Count `n` more steps of work; `TooBig` once the budget is spent.
    fn charge(&mut self, n: u32) -> Result<(), EvalError> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > STEP_BUDGET {
            Err(EvalError::TooBig)
        } else {
            Ok(())
        }
    }

    /// `C(n, k)` from the remembered `C(n, k0)` of the same row when `k` is within
    /// [`BINOM_WALK`] of `k0` (as in `\sum_k \binom{n}{k}` or `\sum_k \binom{n}{2k}`), walking
    /// along the row with `C(n, j+1) = C(n, j) (n-j) / (j+1)` and `C(n, j-1) = C(n, j) j / (n-j+1)`,
    /// both exact divisions.
    fn binom_step(&self, n: &Val, k: &Val) -> Option<Val> {
        let (n, k) = (int_of(n)?, int_of(k)?);
        let (n0, k0, c0) = self.last_binom.as_ref()?;
        if *n0 != n || k.is_negative() || k > n {
            return None;
        }
        let gap = (&k - k0).to_i64()?;
        if gap.unsigned_abs() > BINOM_WALK {
            return None;
        }
        let one = BigInt::from(1);
        let (mut j, mut c) = (k0.clone(), c0.clone());
        while j < k {
            c = c * (&n - &j) / (&j + &one);
            j += &one;
        }
        while j > k {
            c = c * &j / (&n - &j + &one);
            j -= &one;
        }
        Some(Val::Exact(BigRational::from_integer(c)))
    }

    fn remember_binom(&mut self, n: &Val, k: &Val, v: &Val) {
        self.last_binom = match (int_of(n), int_of(k), v.exact()) {
            (Some(n), Some(k), Some(c)) if !k.is_negative() && k <= n && c.is_integer() => {
                Some((n, k, c.to_integer()))
            }
            _ => None,
        };
    }

    /// Node visits so far (each evaluation is capped at [`STEP_BUDGET`]).
    pub fn steps(&self) -> u32 {
        self.steps
    }

    pub fn with_mask(env: &'a Env, mask: u32) -> Self {
        Evaluator {
            env,
            local: Vec::new(),
            steps: 0,
            mask,
            pm_seen: 0,
            in_trig: 0,
            last_binom: None,
        }
    }

    fn lookup(&self, name: &str) -> Option<&Val> {
        self.local
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .or_else(|| self.env.get(name))
    }

    pub fn eval(&mut self, node: &Node) -> Result<Val, EvalError> {
        self.steps += 1;
        if self.steps > STEP_BUDGET {
            return Err(EvalError::TooBig);
        }
        match node {
            Node::Num(r, _) => Ok(Val::Exact(r.clone())),
            Node::Pi => Ok(Val::Approx(C64::real(std::f64::consts::PI))),
            Node::E => Ok(Val::Approx(C64::real(std::f64::consts::E))),
            Node::I => Ok(Val::Approx(C64::new(0.0, 1.0))),
            Node::Inf => Err(EvalError::Unsupported),
            Node::Sym(s) => self.lookup(s).cloned().ok_or(EvalError::Unsupported),
            Node::Neg(a) => Ok(self.eval(a)?.neg()),
            Node::Add(terms) => {
                let mut acc = int(0);
                for (neg, t) in terms {
                    let v = self.eval(t)?;
                    acc = if *neg { acc.sub(&v)? } else { acc.add(&v)? };
                }
                Ok(acc)
            }
            Node::Mul(fs) => {
                let mut acc = int(1);
                for (div, f) in fs {
                    let v = self.eval(f)?;
                    acc = if *div { acc.div(&v)? } else { acc.mul(&v)? };
                }
                Ok(acc)
            }
            Node::Pow(b, e) => {
                let bv = self.eval(b)?;
                let ev = self.eval(e)?;
                bv.pow(&ev)
            }
            Node::Pm(a, b, sign) => {
                let k = self.pm_seen;
                self.pm_seen += 1;
                if k >= 31 {
                    return Err(EvalError::Unsupported);
                }
                let minus = ((self.mask >> k) & 1 == 1) == *sign;
                let base = match a {
                    Some(a) => self.eval(a)?,
                    None => int(0),
                };
                let t = self.eval(b)?;
                if minus { base.sub(&t) } else { base.add(&t) }
            }
            Node::Fact(a) => {
                let v = self.eval(a)?;
                self.charge(to_int(&v).map_or(1, |n| (n.unsigned_abs() / 4).min(1 << 20)) as u32)?;
                factorial(&v)
            }
            Node::Percent(a) => self.eval(a)?.div(&int(100)),
            Node::Degrees(a) => {
                let v = self.eval(a)?;
                if self.in_trig > 0 {
                    v.mul(&Val::Approx(C64::real(std::f64::consts::PI / 180.0)))
                } else {
                    Ok(v)
                }
            }
            Node::Binom(n, k) => {
                let (n, k) = (self.eval(n)?, self.eval(k)?);
                if let Some(v) = self.binom_step(&n, &k) {
                    self.charge(BINOM_WALK as u32)?;
                    self.remember_binom(&n, &k, &v);
                    return Ok(v);
                }
                // Each binomial costs about min(k, n-k) big-number steps: charge them to the
                // budget, so that a long sum of large binomials stops instead of taking seconds.
                let cost = match (to_int(&n), to_int(&k)) {
                    (Some(n), Some(k)) => k.min(n.saturating_sub(k)).max(1).unsigned_abs(),
                    (_, Some(k)) => k.unsigned_abs(),
                    _ => 1,
                };
                self.charge(cost.min(1 << 20) as u32)?;
                let v = binom(&n, &k)?;
                self.remember_binom(&n, &k, &v);
                Ok(v)
            }
            Node::Mod(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                modulo(&a, &b)
            }
            Node::Root(n, x) => {
                let (n, x) = (self.eval(n)?, self.eval(x)?);
                let inv = int(1).div(&n)?;
                if let Some(k) = to_int(&n) {
                    // Odd roots of negative reals stay real.
                    if k % 2 != 0
                        && let Some(xr) = x.real()
                        && xr < 0.0
                    {
                        return Ok(x.neg().pow(&inv)?.neg());
                    }
                }
                x.pow(&inv)
            }
            Node::LogBase(b, x) => {
                let (b, x) = (self.eval(b)?, self.eval(x)?);
                log_base(&b, &x)
            }
            Node::Func(Func::Det | Func::Abs, args)
                if matches!(args.as_slice(), [Node::Matrix(_)]) =>
            {
                match args.as_slice() {
                    [Node::Matrix(rows)] => {
                        let mut m = Vec::with_capacity(rows.len());
                        for r in rows {
                            m.push(
                                r.iter()
                                    .map(|x| self.eval(x))
                                    .collect::<Result<Vec<_>, _>>()?,
                            );
                        }
                        crate::matrix::det(&m)
                    }
                    _ => Err(EvalError::Unsupported),
                }
            }
            Node::Func(f @ (Func::Gcd | Func::Lcm), args) if args.iter().any(has_symbols) => {
                // With symbols, the gcd or lcm is a polynomial (when it is determined at all),
                // not the gcd of the arguments' values at a sample point.
                match symbolic_gcd_lcm(*f == Func::Gcd, args) {
                    Some(n) => self.eval(&n),
                    None => Err(EvalError::Unsupported),
                }
            }
            Node::Func(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                let trig = matches!(
                    f,
                    Func::Sin | Func::Cos | Func::Tan | Func::Cot | Func::Sec | Func::Csc
                );
                for a in args {
                    self.in_trig += u32::from(trig);
                    let r = self.eval(a);
                    self.in_trig -= u32::from(trig);
                    vals.push(r?);
                }
                apply(*f, &vals)
            }
            Node::BigOp(false, var, lo, hi, body) if **hi == Node::Inf => {
                let lo = self.eval(lo)?;
                let lo = to_int(&lo).ok_or(EvalError::Unsupported)?;
                self.infinite_sum(var, lo, body)
            }
            Node::BigOp(is_prod, var, lo, hi, body) => {
                let (lo, hi) = (self.eval(lo)?, self.eval(hi)?);
                let (Some(lo), Some(hi)) = (to_int(&lo), to_int(&hi)) else {
                    return Err(EvalError::Unsupported);
                };
                if hi.saturating_sub(lo) > 10_000 {
                    return Err(EvalError::TooBig);
                }
                let mut acc = int(if *is_prod { 1 } else { 0 });
                for k in lo..=hi {
                    self.local.push((var.clone(), int(k)));
                    let v = self.eval(body);
                    self.local.pop();
                    let v = v?;
                    acc = if *is_prod { acc.mul(&v)? } else { acc.add(&v)? };
                    // A running sum of fractions grows a huge denominator (H_9000 has 13 000
                    // bits), and each exact step then costs more than the whole answer should:
                    // past DENOM_BITS the sum goes on in floating point. Integer sums stay exact.
                    if let Val::Exact(r) = &acc
                        && r.denom().bits() > DENOM_BITS
                    {
                        acc = Val::Approx(acc.approx_checked()?);
                    }
                }
                Ok(acc)
            }
            Node::Integral(var, lo, hi, body) => {
                let a = self.eval(lo)?.real().ok_or(EvalError::Unsupported)?;
                let b = self.eval(hi)?.real().ok_or(EvalError::Unsupported)?;
                let n = 200;
                let h = (b - a) / n as f64;
                let mut s = 0.0;
                for k in 0..=n {
                    let x = a + h * k as f64;
                    self.local.push((var.clone(), Val::Approx(C64::real(x))));
                    let v = self.eval(body);
                    self.local.pop();
                    let y = v?.real().ok_or(EvalError::Unsupported)?;
                    let w = if k == 0 || k == n {
                        1.0
                    } else if k % 2 == 1 {
                        4.0
                    } else {
                        2.0
                    };
                    s += w * y;
                }
                approx(C64::real(s * h / 3.0))
            }
            Node::Ratio(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                a.div(&b)
            }
            Node::Text(_)
            | Node::Tuple(_)
            | Node::Interval(..)
            | Node::Set(_)
            | Node::Matrix(_)
            | Node::Union(_)
            | Node::Rel(..)
            | Node::List(_) => Err(EvalError::Unsupported),
        }
    }
}

/// Partial sums are taken at these term counts and feed the extrapolation.
const SERIES_CHECKPOINTS: [i64; 5] = [64, 128, 256, 512, 1024];

impl Evaluator<'_> {
    /// The value of `Σ_{var ≥ lo} body`, or `Unsupported` when the series cannot be shown to
    /// converge numerically.
    ///
    /// Covers the well-known series answers are written as: factorial and geometric series (the
    /// terms fall below 1e-17 of the sum, and summing stops there), and power-law or alternating
    /// series such as `Σ 1/n²` and `Σ (-1)^{n+1}/n`, whose partial sums at an even number of terms
    /// `N` behave like `S + a/N + b/N² + …`: four rounds of Richardson extrapolation over
    /// N = 64…1024 remove those terms (to about 1e-14 on the classical series). It must not give
    /// a value to a divergent series: `Σ 1/n` grows like `ln N`, which is not of that form, so
    /// successive extrapolations disagree and the sum is refused, and terms that do not shrink
    /// (a constant, `n^n`) are refused after 64 of them.
    fn infinite_sum(&mut self, var: &str, lo: i64, body: &Node) -> Result<Val, EvalError> {
        // The index is bound as a float when the body allows it (`1/n^2`: a thousand exact
        // rational divisions would cost milliseconds), and exactly when it does not (`1/n!`).
        self.local
            .push((var.to_string(), Val::Approx(C64::real(lo as f64))));
        let slot = self.local.len() - 1;
        let exact = self.eval(body).is_err();
        let r = self.sum_terms(slot, lo, exact, body);
        self.local.pop();
        r
    }

    /// Partial sums of the series whose index lives in `self.local[slot]` (updated in place).
    fn sum_terms(
        &mut self,
        slot: usize,
        lo: i64,
        mut exact: bool,
        body: &Node,
    ) -> Result<Val, EvalError> {
        let mut sum = 0.0f64;
        let mut partial = Vec::with_capacity(SERIES_CHECKPOINTS.len());
        let mut small_run = 0;
        let mut first_term = 0.0f64;
        let last = SERIES_CHECKPOINTS[SERIES_CHECKPOINTS.len() - 1];
        for n in 0..last {
            let k = lo.checked_add(n).ok_or(EvalError::TooBig)?;
            self.local[slot].1 = if exact {
                int(k)
            } else {
                Val::Approx(C64::real(k as f64))
            };
            let mut v = self.eval(body);
            if !exact && matches!(v, Err(EvalError::Unsupported)) {
                // The body needs an exact index after all (`(n+1)!` looked fine at n = 0).
                exact = true;
                self.local[slot].1 = int(k);
                v = self.eval(body);
            }
            let t = match v {
                Ok(v) => v.approx_checked()?,
                // `1/n!` underflows or becomes too big to hold exactly: the term is negligible.
                Err(EvalError::TooBig) if n > 20 && small_run > 0 => C64::real(0.0),
                Err(e) => return Err(e),
            };
            if !t.is_real() {
                return Err(EvalError::Unsupported);
            }
            if first_term == 0.0 {
                first_term = t.re.abs();
            }
            // Terms that have not fallen to a tenth of the first after 64 of them: no value,
            // and no need to pay for the remaining evaluations.
            if n == 63 && t.re.abs() > 0.1 * first_term {
                return Err(EvalError::Unsupported);
            }
            sum += t.re;
            if !sum.is_finite() {
                return Err(EvalError::TooBig);
            }
            small_run = if t.re.abs() <= 1e-17 * sum.abs().max(1e-300) {
                small_run + 1
            } else {
                0
            };
            if small_run >= 8 {
                return approx(C64::real(sum));
            }
            if SERIES_CHECKPOINTS.contains(&(n + 1)) {
                partial.push(sum);
            }
        }
        // Terms that do not shrink like a power of N: refuse.
        let d1 = partial[3] - partial[2];
        let d2 = partial[4] - partial[3];
        if d1 != 0.0 && (d2.abs() >= 0.75 * d1.abs() || d2.is_nan()) {
            return Err(EvalError::Unsupported);
        }
        // Richardson extrapolation in h = 1/N with N doubling: four rounds.
        let mut row = partial;
        let mut prev_best = f64::NAN;
        for round in 1..=4 {
            let f = 2f64.powi(round);
            row = row
                .windows(2)
                .map(|w| (f * w[1] - w[0]) / (f - 1.0))
                .collect();
            if round == 3 {
                prev_best = row[row.len() - 1];
            }
        }
        let best = row[0];
        if (best - prev_best).abs() > 1e-8 * best.abs().max(1e-12) {
            return Err(EvalError::Unsupported);
        }
        approx(C64::real(best))
    }
}

fn log_base(b: &Val, x: &Val) -> Result<Val, EvalError> {
    let (bb, xx) = (b.approx_checked()?, x.approx_checked()?);
    if !bb.is_real() || !xx.is_real() || bb.re <= 0.0 || xx.re <= 0.0 || bb.re == 1.0 {
        return Err(EvalError::Domain);
    }
    let l = xx.re.ln() / bb.re.ln();
    // Exact when x is an integer power of b.
    let k = l.round();
    if (l - k).abs() < 1e-9
        && k.abs() < 4096.0
        && let (Val::Exact(_), Val::Exact(_)) = (b, x)
        && let Ok(p) = b.pow(&int(k as i64))
        && value::val_eq(&p, x)
    {
        return Ok(int(k as i64));
    }
    approx(C64::real(l))
}

fn apply(f: Func, v: &[Val]) -> Result<Val, EvalError> {
    let one = || v.first().ok_or(EvalError::Unsupported);
    match f {
        Func::Sqrt => {
            let x = one()?;
            if let Some(r) = x.exact()
                && r.is_negative()
            {
                return Val::Approx(C64::new(0.0, 1.0)).mul(&x.neg().pow(&half())?);
            }
            x.pow(&half())
        }
        Func::Abs => {
            let x = one()?;
            match x {
                Val::Exact(r) => Ok(Val::Exact(r.abs())),
                Val::Approx(c) => approx(C64::real(c.abs())),
            }
        }
        Func::Floor | Func::Ceil => {
            let x = one()?;
            match x {
                Val::Exact(r) => Ok(Val::Exact(if f == Func::Floor {
                    r.floor()
                } else {
                    r.ceil()
                })),
                _ => real_fn(
                    x,
                    if f == Func::Floor {
                        f64::floor
                    } else {
                        f64::ceil
                    },
                ),
            }
        }
        Func::Exp => {
            let x = one()?;
            if x.is_zero() {
                return Ok(int(1));
            }
            approx(x.approx_checked()?.exp())
        }
        Func::Ln | Func::Log => {
            let x = one()?;
            if let Some(r) = x.exact() {
                if r == &BigRational::from_integer(BigInt::from(1)) {
                    return Ok(int(0));
                }
                if r.is_zero() {
                    return Err(EvalError::Domain);
                }
            }
            approx(x.approx_checked()?.ln())
        }
        Func::Sin | Func::Cos | Func::Tan | Func::Cot | Func::Sec | Func::Csc => {
            let x = one()?;
            if x.is_zero() {
                return match f {
                    Func::Sin | Func::Tan => Ok(int(0)),
                    Func::Cos | Func::Sec => Ok(int(1)),
                    _ => Err(EvalError::Domain),
                };
            }
            let t = x.approx_checked()?;
            if !t.is_real() {
                return Err(EvalError::Unsupported);
            }
            let (s, c) = t.re.sin_cos();
            // At a multiple of π/2 the sine or cosine is 0 up to the rounding of the argument:
            // make it exactly 0 (so `\sin\pi = 0` and `\tan\frac{\pi}{2}` is undefined).
            let snap = |v: f64| {
                if v.abs() <= value::CANCEL * t.re.abs().max(1.0) {
                    0.0
                } else {
                    v
                }
            };
            let (s, c) = (snap(s), snap(c));
            let r = match f {
                Func::Sin => s,
                Func::Cos => c,
                Func::Tan => s / c,
                Func::Cot => c / s,
                Func::Sec => 1.0 / c,
                _ => 1.0 / s,
            };
            if r == 0.0 {
                return Ok(int(0));
            }
            approx(C64::real(r))
        }
        Func::Asin => real_fn(one()?, f64::asin),
        Func::Acos => real_fn(one()?, f64::acos),
        Func::Atan => real_fn(one()?, f64::atan),
        Func::Sinh => real_fn(one()?, f64::sinh),
        Func::Cosh => real_fn(one()?, f64::cosh),
        Func::Tanh => real_fn(one()?, f64::tanh),
        Func::Coth => real_fn(one()?, |x| 1.0 / x.tanh()),
        Func::Sech => real_fn(one()?, |x| 1.0 / x.cosh()),
        Func::Csch => real_fn(one()?, |x| 1.0 / x.sinh()),
        Func::Asinh => real_fn(one()?, f64::asinh),
        // Outside their real domains these are NaN, which `checked` reports as a domain error.
        Func::Acosh => real_fn(one()?, |x| if x >= 1.0 { x.acosh() } else { f64::NAN }),
        Func::Atanh => real_fn(one()?, |x| if x.abs() < 1.0 { x.atanh() } else { f64::NAN }),
        Func::Acot => real_fn(one()?, |x| (1.0 / x).atan()),
        Func::DoubleFactorial => value::double_factorial(one()?),
        Func::Det => Err(EvalError::Unsupported),
        Func::Gamma => gamma(one()?),
        Func::Max | Func::Min => {
            let mut best: Option<(&Val, f64)> = None;
            for x in v {
                let r = x.real().ok_or(EvalError::Unsupported)?;
                let better = match best {
                    None => true,
                    Some((_, b)) => (f == Func::Max && r > b) || (f == Func::Min && r < b),
                };
                if better {
                    best = Some((x, r));
                }
            }
            best.map(|(x, _)| x.clone()).ok_or(EvalError::Unsupported)
        }
        Func::Gcd | Func::Lcm => {
            let mut acc: Option<Val> = None;
            for x in v {
                acc = Some(match acc {
                    None => match x {
                        Val::Exact(r) => Val::Exact(r.abs()),
                        Val::Approx(c) => Val::Approx(C64::real(c.abs())),
                    },
                    Some(a) => match (&a, x) {
                        (Val::Exact(p), Val::Exact(q)) => Val::Exact(if f == Func::Gcd {
                            value::rat_gcd(p, q)
                        } else {
                            value::rat_lcm(p, q)
                        }),
                        // Non-rational arguments: no common rational factor.
                        _ if f == Func::Gcd => int(1),
                        _ => a.mul(x)?,
                    },
                });
            }
            acc.ok_or(EvalError::Unsupported)
        }
    }
}

/// `Γ(x)`: exactly `(x-1)!` at positive integers, Lanczos (g = 7, 9 terms, about 1e-15
/// relative) at other reals; poles at 0, -1, -2, … are a domain error.
fn gamma(x: &Val) -> Result<Val, EvalError> {
    if let Some(r) = x.exact()
        && r.is_integer()
    {
        if !r.is_positive() {
            return Err(EvalError::Domain);
        }
        return factorial(&Val::Exact(r - BigRational::from_integer(BigInt::from(1))));
    }
    let Some(v) = x.real() else {
        return Err(EvalError::Unsupported);
    };
    approx(C64::real(lanczos_gamma(v)))
}

fn lanczos_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1-x) = π / sin(πx).
        return std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * lanczos_gamma(1.0 - x));
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * a
}

fn half() -> Val {
    Val::Exact(BigRational::new(BigInt::from(1), BigInt::from(2)))
}

/// Numeric content of a polynomial-like expression: `50x` → 50, `x + 76` → 1, `y` → 1.
fn content(n: &Node) -> Option<BigRational> {
    let one = || BigRational::from_integer(BigInt::from(1));
    match n {
        Node::Num(r, _) => Some(r.abs()),
        Node::Sym(_) => Some(one()),
        Node::Neg(a) => content(a),
        Node::Pow(b, _) if matches!(**b, Node::Sym(_)) => Some(one()),
        Node::Func(Func::Sqrt, a) if a.len() == 1 && matches!(a[0], Node::Sym(_)) => Some(one()),
        Node::Mul(fs) => {
            let mut acc = one();
            for (div, f) in fs {
                if *div {
                    return None;
                }
                acc *= content(f)?;
            }
            Some(acc)
        }
        Node::Add(ts) => {
            let mut acc: Option<BigRational> = None;
            for (_, t) in ts {
                let c = content(t)?;
                acc = Some(match acc {
                    None => c,
                    Some(a) => value::rat_gcd(&a, &c),
                });
            }
            acc
        }
        _ => None,
    }
}

fn has_symbols(n: &Node) -> bool {
    let mut syms = BTreeSet::new();
    crate::equiv::free_syms(n, &mut syms);
    !syms.is_empty()
}

/// A monomial `c · x^a · y^b …` with an integer coefficient: (c, powers).
type Monomial = (BigInt, BTreeMap<String, u32>);

fn monomial(n: &Node) -> Option<Monomial> {
    match n {
        Node::Num(r, _) if r.is_integer() => Some((r.to_integer(), BTreeMap::new())),
        Node::Sym(s) => Some((BigInt::one(), BTreeMap::from([(s.clone(), 1)]))),
        Node::Pow(b, e) => match (&**b, &**e) {
            (Node::Sym(s), Node::Num(k, _)) if k.is_integer() => {
                let k = k.to_integer().to_u32().filter(|k| *k <= 64)?;
                Some((BigInt::one(), BTreeMap::from([(s.clone(), k)])))
            }
            _ => None,
        },
        Node::Neg(a) => monomial(a).map(|(c, m)| (-c, m)),
        Node::Mul(fs) => {
            let (mut c, mut m) = (BigInt::one(), BTreeMap::new());
            for (div, f) in fs {
                if *div {
                    return None;
                }
                let (fc, fm) = monomial(f)?;
                c *= fc;
                for (s, k) in fm {
                    *m.entry(s).or_insert(0) += k;
                }
            }
            Some((c, m))
        }
        _ => None,
    }
}

fn monomial_node((c, m): &Monomial) -> Node {
    let mut fs = vec![(false, Node::Num(BigRational::from_integer(c.clone()), 0))];
    for (s, k) in m.iter().filter(|(_, k)| **k > 0) {
        let k = Node::Num(BigRational::from_integer(BigInt::from(*k)), 0);
        fs.push((
            false,
            Node::Pow(Box::new(Node::Sym(s.clone())), Box::new(k)),
        ));
    }
    Node::Mul(fs)
}

/// The coefficient of a product of a constant and powers or roots of symbols (`4\sqrt{x}`,
/// `-6x^2 y`): such a product has no factor other than its constant and its symbols.
fn power_product_coefficient(n: &Node) -> Option<BigInt> {
    match n {
        Node::Num(r, _) if r.is_integer() => Some(r.to_integer()),
        Node::Sym(_) => Some(BigInt::one()),
        Node::Pow(b, _) if matches!(**b, Node::Sym(_)) => Some(BigInt::one()),
        Node::Func(Func::Sqrt, a) if matches!(a.as_slice(), [Node::Sym(_)]) => Some(BigInt::one()),
        Node::Neg(a) => power_product_coefficient(a),
        Node::Mul(fs) => fs.iter().try_fold(BigInt::one(), |acc, (div, f)| {
            (!div).then_some(())?;
            Some(acc * power_product_coefficient(f)?)
        }),
        _ => None,
    }
}

/// `\gcd(x + 76, 4\sqrt{x}) = 1`: when every argument is either a polynomial with a non-zero
/// constant term or a product of a constant and symbols, no symbol divides all of them, so the
/// gcd is the gcd of the contents and coefficients. `None` when some argument is neither, or
/// when no argument is a product of symbols (two polynomials such as `x + 1` and `2x + 2` share
/// `x + 1`).
fn gcd_with_constant_terms(args: &[Node]) -> Option<BigInt> {
    let mut g = BigInt::zero();
    let mut products = 0;
    for a in args {
        if let Some(c) = power_product_coefficient(a) {
            products += usize::from(has_symbols(a));
            g = g.gcd(&c);
            continue;
        }
        let mut syms = BTreeSet::new();
        crate::equiv::free_syms(a, &mut syms);
        let at_zero: Env = syms.into_iter().map(|s| (s, int(0))).collect();
        let c0 = eval(a, &at_zero).ok()?;
        if c0.is_zero() || !matches!(a, Node::Add(_)) {
            return None;
        }
        g = g.gcd(&content(a).filter(|r| r.is_integer())?.to_integer());
    }
    (products > 0 && !g.is_zero()).then_some(g)
}

/// `gcd`/`lcm` of arguments with symbols, over the integer polynomials, where it is determined
/// without factoring:
/// - monomials: `\gcd(6x, 9x^2) = 3x` (gcd of the coefficients, lowest powers) and
///   `\operatorname{lcm}(6x, 9x^2) = 18x^2` (lcm, highest powers);
/// - one polynomial and constants: `\gcd(4x + 6, 10) = 2` (the gcd of the polynomial's content
///   and the constants) and `\operatorname{lcm}(4x + 6, 10) = 10 (4x + 6) / 2`.
///
/// Anything else (`\gcd(x^2 - 1, x + 1)`, two polynomials) is `None`: the content alone is not
/// the gcd, so `\gcd(6x, 9x^2)` must not equal 3.
fn symbolic_gcd_lcm(gcd: bool, args: &[Node]) -> Option<Node> {
    let monos: Vec<Option<Monomial>> = args.iter().map(monomial).collect();
    if monos.iter().all(Option::is_some) {
        let monos: Vec<Monomial> = monos.into_iter().flatten().collect();
        if !gcd && monos.iter().any(|(c, _)| c.is_zero()) {
            return Some(Node::Num(BigRational::zero(), 0));
        }
        let nonzero: Vec<&Monomial> = monos.iter().filter(|(c, _)| !c.is_zero()).collect();
        let first = nonzero.first()?;
        let mut coef = first.0.abs();
        let mut pows: BTreeMap<String, u32> = BTreeMap::new();
        let syms: BTreeSet<&String> = nonzero.iter().flat_map(|(_, m)| m.keys()).collect();
        for s in syms {
            let ks = nonzero.iter().map(|(_, m)| m.get(s).copied().unwrap_or(0));
            let k = if gcd { ks.min() } else { ks.max() };
            pows.insert(s.clone(), k.unwrap_or(0));
        }
        for (c, _) in &nonzero[1..] {
            coef = if gcd { coef.gcd(c) } else { coef.lcm(c) };
        }
        return Some(monomial_node(&(coef, pows)));
    }
    if gcd && let Some(g) = gcd_with_constant_terms(args) {
        return Some(Node::Num(BigRational::from_integer(g), 0));
    }
    // One polynomial with constants.
    let (polys, consts): (Vec<&Node>, Vec<&Node>) = args.iter().partition(|a| has_symbols(a));
    let [poly] = polys.as_slice() else {
        return None;
    };
    let mut c = if gcd { BigInt::zero() } else { BigInt::one() };
    for k in consts {
        let v = monomial(k).filter(|(_, m)| m.is_empty())?.0;
        c = if gcd { c.gcd(&v) } else { c.lcm(&v) };
    }
    let content = content(poly).filter(|r| r.is_integer())?.to_integer();
    if c.is_zero() {
        return None;
    }
    let g = content.gcd(&c);
    let num = |n: BigInt| Node::Num(BigRational::from_integer(n), 0);
    Some(if gcd {
        num(g)
    } else {
        Node::Mul(vec![(false, num(c / g)), (false, (*poly).clone())])
    })
}
