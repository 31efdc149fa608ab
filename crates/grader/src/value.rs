//! Numbers: exact big rationals where possible, complex `f64` otherwise, with size caps.

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Largest bit size an exact intermediate result may reach before we give up on exactness.
pub const MAX_BITS: u64 = 40_000;
/// Largest `n` for which `n!` is computed exactly.
pub const MAX_FACTORIAL: u64 = 3_000;

/// Why an evaluation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// Division by zero, log of zero, etc.
    Domain,
    /// A result or intermediate exceeded the size caps.
    TooBig,
    /// Something the evaluator does not model (a free function, a matrix in arithmetic...).
    Unsupported,
}

/// A complex number in `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub const fn new(re: f64, im: f64) -> Self {
        C64 { re, im }
    }
    pub fn real(re: f64) -> Self {
        C64 { re, im: 0.0 }
    }
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    pub fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }
    /// Imaginary part negligible compared to the real part.
    pub fn is_real(self) -> bool {
        self.im.abs() <= 1e-12 * self.re.abs().max(1e-300) || self.im == 0.0
    }
    fn add(self, o: C64) -> C64 {
        C64::new(self.re + o.re, self.im + o.im)
    }
    fn sub(self, o: C64) -> C64 {
        C64::new(self.re - o.re, self.im - o.im)
    }
    fn mul(self, o: C64) -> C64 {
        C64::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    fn div(self, o: C64) -> C64 {
        let d = o.re * o.re + o.im * o.im;
        C64::new(
            (self.re * o.re + self.im * o.im) / d,
            (self.im * o.re - self.re * o.im) / d,
        )
    }
    pub fn exp(self) -> C64 {
        let m = self.re.exp();
        C64::new(m * self.im.cos(), m * self.im.sin())
    }
    pub fn ln(self) -> C64 {
        C64::new(self.abs().ln(), self.im.atan2(self.re))
    }
    pub fn sqrt(self) -> C64 {
        if self.im == 0.0 {
            if self.re >= 0.0 {
                return C64::real(self.re.sqrt());
            }
            return C64::new(0.0, (-self.re).sqrt());
        }
        let r = self.abs();
        let re = ((r + self.re) / 2.0).sqrt();
        let im = ((r - self.re) / 2.0).sqrt().copysign(self.im);
        C64::new(re, im)
    }
    pub fn powc(self, e: C64) -> C64 {
        if self.re == 0.0 && self.im == 0.0 {
            return if e.re > 0.0 {
                C64::real(0.0)
            } else {
                C64::real(f64::NAN)
            };
        }
        if self.im == 0.0 && e.im == 0.0 && (self.re > 0.0 || e.re.fract() == 0.0) {
            return C64::real(self.re.powf(e.re));
        }
        e.mul(self.ln()).exp()
    }
}

/// A value: exact rational, or an approximate complex number.
#[derive(Debug, Clone)]
pub enum Val {
    Exact(BigRational),
    Approx(C64),
}

fn bits(r: &BigRational) -> u64 {
    r.numer().bits() + r.denom().bits()
}

/// A floating value, or the error that says why it is not one (NaN: domain; infinite: too big).
pub(crate) fn checked(v: C64) -> Result<Val, EvalError> {
    if v.re.is_nan() || v.im.is_nan() {
        Err(EvalError::Domain)
    } else if !v.is_finite() {
        Err(EvalError::TooBig)
    } else {
        Ok(Val::Approx(v))
    }
}

pub fn int(n: i64) -> Val {
    Val::Exact(BigRational::from_integer(BigInt::from(n)))
}

pub fn rat_to_f64(r: &BigRational) -> f64 {
    r.to_f64().unwrap_or(f64::NAN)
}

impl Val {
    pub fn approx(&self) -> C64 {
        match self {
            Val::Exact(r) => C64::real(rat_to_f64(r)),
            Val::Approx(c) => *c,
        }
    }
    /// Approximate value, failing when an exact number does not fit an `f64` faithfully.
    pub fn approx_checked(&self) -> Result<C64, EvalError> {
        let c = self.approx();
        if let Val::Exact(r) = self
            && (!c.re.is_finite() || (c.re == 0.0 && !r.is_zero()))
        {
            return Err(EvalError::TooBig);
        }
        Ok(c)
    }
    pub fn exact(&self) -> Option<&BigRational> {
        match self {
            Val::Exact(r) => Some(r),
            Val::Approx(_) => None,
        }
    }
    pub fn is_zero(&self) -> bool {
        match self {
            Val::Exact(r) => r.is_zero(),
            Val::Approx(c) => c.re == 0.0 && c.im == 0.0,
        }
    }
    /// Real part as `f64` when the value is real.
    pub fn real(&self) -> Option<f64> {
        let c = self.approx();
        if c.is_real() && c.re.is_finite() {
            Some(c.re)
        } else {
            None
        }
    }

    /// Integers are added, subtracted and multiplied as integers: a `BigRational` operation
    /// reduces its result by a gcd with the denominator 1, which takes time quadratic in the
    /// size of the numbers (a sum of 9000 powers `k^{900}` took 7 s that way).
    pub fn add(&self, o: &Val) -> Result<Val, EvalError> {
        match (self, o) {
            (Val::Exact(a), Val::Exact(b)) if a.is_integer() && b.is_integer() => {
                cap(BigRational::from_integer(a.numer() + b.numer()))
            }
            (Val::Exact(a), Val::Exact(b)) => cap(a + b),
            _ => {
                let (x, y) = (self.approx_checked()?, o.approx_checked()?);
                cancelled(x, y, x.add(y))
            }
        }
    }
    pub fn sub(&self, o: &Val) -> Result<Val, EvalError> {
        match (self, o) {
            (Val::Exact(a), Val::Exact(b)) if a.is_integer() && b.is_integer() => {
                cap(BigRational::from_integer(a.numer() - b.numer()))
            }
            (Val::Exact(a), Val::Exact(b)) => cap(a - b),
            _ => {
                let (x, y) = (self.approx_checked()?, o.approx_checked()?);
                cancelled(x, y, x.sub(y))
            }
        }
    }
    pub fn neg(&self) -> Val {
        match self {
            Val::Exact(a) => Val::Exact(-a),
            Val::Approx(c) => Val::Approx(C64::new(-c.re, -c.im)),
        }
    }
    pub fn mul(&self, o: &Val) -> Result<Val, EvalError> {
        match (self, o) {
            (Val::Exact(a), Val::Exact(b)) => {
                if bits(a) + bits(b) > 2 * MAX_BITS {
                    return Err(EvalError::TooBig);
                }
                if a.is_integer() && b.is_integer() {
                    return cap(BigRational::from_integer(a.numer() * b.numer()));
                }
                cap(a * b)
            }
            _ => checked(self.approx_checked()?.mul(o.approx_checked()?)),
        }
    }
    pub fn div(&self, o: &Val) -> Result<Val, EvalError> {
        if o.is_zero() {
            return Err(EvalError::Domain);
        }
        match (self, o) {
            (Val::Exact(a), Val::Exact(b)) => {
                if bits(a) + bits(b) > 2 * MAX_BITS {
                    return Err(EvalError::TooBig);
                }
                cap(a / b)
            }
            _ => checked(self.approx_checked()?.div(o.approx_checked()?)),
        }
    }

    pub fn pow(&self, e: &Val) -> Result<Val, EvalError> {
        if let (Val::Exact(b), Val::Exact(x)) = (self, e) {
            if x.is_integer() {
                let n = x.to_integer();
                if b.is_zero() {
                    return if n.is_negative() {
                        Err(EvalError::Domain)
                    } else if n.is_zero() {
                        Ok(int(1))
                    } else {
                        Ok(int(0))
                    };
                }
                if b.abs().is_one() {
                    let odd = n.is_odd();
                    return Ok(if b.is_negative() && odd {
                        int(-1)
                    } else {
                        int(1)
                    });
                }
                let nn = n.abs().to_u64().ok_or(EvalError::TooBig)?;
                if bits(b).saturating_mul(nn) > MAX_BITS {
                    return Err(EvalError::TooBig);
                }
                // Numerator and denominator separately: a `BigRational` product reduces by a
                // gcd at every step, which costs quadratic time on big integers.
                let p = BigRational::new_raw(
                    num_traits::pow::pow(b.numer().clone(), nn as usize),
                    num_traits::pow::pow(b.denom().clone(), nn as usize),
                );
                return Ok(Val::Exact(if n.is_negative() { p.recip() } else { p }));
            }
            // Rational exponent p/q: exact when the base is a perfect q-th power.
            if let (Some(q), Some(p)) = (x.denom().to_u32(), x.numer().to_i64())
                && q <= 64
                && p.unsigned_abs() <= 4096
                && !b.is_negative()
                && let (Some(rn), Some(rd)) = (iroot(b.numer(), q), iroot(b.denom(), q))
            {
                let root = Val::Exact(BigRational::new(rn, rd));
                return root.pow(&int(p));
            }
        }
        let (b, x) = (self.approx_checked()?, e.approx_checked()?);
        checked(b.powc(x))
    }
}

/// Relative size below which a floating sum or difference is taken to have cancelled exactly.
pub const CANCEL: f64 = 1e-13;

/// The floating result `r` of `x ± y`, or exact 0 when the terms cancelled to within rounding
/// (`e^{i\pi} + 1`, `\sqrt{2}^2 - 2`). This is what lets zero be compared exactly: a small value
/// that did not come from cancellation (`e^{-40}`) keeps its size and is not equal to 0.
fn cancelled(x: C64, y: C64, r: C64) -> Result<Val, EvalError> {
    if r.abs() <= CANCEL * x.abs().max(y.abs()) {
        return Ok(int(0));
    }
    checked(r)
}

fn cap(r: BigRational) -> Result<Val, EvalError> {
    if bits(&r) > MAX_BITS {
        Err(EvalError::TooBig)
    } else {
        Ok(Val::Exact(r))
    }
}

/// Exact integer `q`-th root of a non-negative integer, if it exists.
pub fn iroot(n: &BigInt, q: u32) -> Option<BigInt> {
    if n.is_negative() {
        return None;
    }
    let r = n.nth_root(q);
    if num_traits::pow::pow(r.clone(), q as usize) == *n {
        Some(r)
    } else {
        None
    }
}

/// Exact factorial of a small non-negative integer.
pub fn factorial(v: &Val) -> Result<Val, EvalError> {
    let r = v.exact().ok_or(EvalError::Unsupported)?;
    if !r.is_integer() || r.is_negative() {
        return Err(EvalError::Domain);
    }
    let n = r.to_integer().to_u64().ok_or(EvalError::TooBig)?;
    if n > MAX_FACTORIAL {
        return Err(EvalError::TooBig);
    }
    let mut acc = BigInt::one();
    for k in 2..=n {
        acc *= k;
    }
    Ok(Val::Exact(BigRational::from_integer(acc)))
}

/// Exact double factorial `n!! = n (n-2) (n-4) …` of a small non-negative integer.
pub fn double_factorial(v: &Val) -> Result<Val, EvalError> {
    let r = v.exact().ok_or(EvalError::Unsupported)?;
    if !r.is_integer() || r.is_negative() {
        return Err(EvalError::Domain);
    }
    let n = r.to_integer().to_u64().ok_or(EvalError::TooBig)?;
    if n > 2 * MAX_FACTORIAL {
        return Err(EvalError::TooBig);
    }
    let mut acc = BigInt::one();
    let mut k = n;
    while k > 1 {
        acc *= k;
        k -= 2;
    }
    Ok(Val::Exact(BigRational::from_integer(acc)))
}

/// Binomial coefficient for integer arguments.
pub fn binom(n: &Val, k: &Val) -> Result<Val, EvalError> {
    let (n, k) = (
        n.exact().ok_or(EvalError::Unsupported)?,
        k.exact().ok_or(EvalError::Unsupported)?,
    );
    if !n.is_integer() || !k.is_integer() {
        return Err(EvalError::Unsupported);
    }
    let (n, k) = (n.to_integer(), k.to_integer());
    if k.is_negative() || k > n {
        return Ok(int(0));
    }
    let n = n.to_u64().ok_or(EvalError::TooBig)?;
    let k = k
        .to_u64()
        .ok_or(EvalError::TooBig)?
        .min(n - k.to_u64().unwrap_or(0));
    if k > 20_000 {
        return Err(EvalError::TooBig);
    }
    let mut acc = BigInt::one();
    for i in 0..k {
        acc = acc * (n - i) / (i + 1);
    }
    Ok(Val::Exact(BigRational::from_integer(acc)))
}

/// Do two values agree? Exact values compare exactly; otherwise a tight relative tolerance.
pub fn val_eq(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Exact(x), Val::Exact(y)) => x == y,
        _ => {
            let (Ok(x), Ok(y)) = (a.approx_checked(), b.approx_checked()) else {
                return false;
            };
            c_close(x, y, 1e-9)
        }
    }
}

/// Relative closeness. There is no absolute tolerance: values that vanish by cancellation are
/// already exact zeros (see `cancelled`), and a tiny value such as `1E-32` or `e^{-40}` must
/// not equal 0 or another tiny value.
pub fn c_close(x: C64, y: C64, rel: f64) -> bool {
    let d = C64::new(x.re - y.re, x.im - y.im).abs();
    let m = x.abs().max(y.abs());
    d <= rel * m
}

/// Rational gcd: gcd of numerators over lcm of denominators.
pub fn rat_gcd(a: &BigRational, b: &BigRational) -> BigRational {
    BigRational::new(a.numer().gcd(b.numer()), a.denom().lcm(b.denom()))
}

pub fn rat_lcm(a: &BigRational, b: &BigRational) -> BigRational {
    if a.is_zero() || b.is_zero() {
        return BigRational::zero();
    }
    BigRational::new(a.numer().lcm(b.numer()), a.denom().gcd(b.denom()))
}

/// `a mod b` with the sign of `b` (floored division).
pub fn modulo(a: &Val, b: &Val) -> Result<Val, EvalError> {
    if b.is_zero() {
        return Err(EvalError::Domain);
    }
    match (a, b) {
        (Val::Exact(x), Val::Exact(y)) => {
            let q = (x / y).floor();
            cap(x - y * q)
        }
        _ => {
            let (x, y) = (
                a.real().ok_or(EvalError::Domain)?,
                b.real().ok_or(EvalError::Domain)?,
            );
            checked(C64::real(x - y * (x / y).floor()))
        }
    }
}

/// Is the exact rational a terminating decimal (denominator 2^a 5^b)?
pub fn is_terminating(r: &BigRational) -> bool {
    let mut d = r.denom().clone();
    let two = BigInt::from(2);
    let five = BigInt::from(5);
    while (&d % &two).is_zero() {
        d /= &two;
    }
    while (&d % &five).is_zero() {
        d /= &five;
    }
    d.is_one()
}
