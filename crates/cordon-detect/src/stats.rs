//! Robust statistics for scoring: quantiles, median, MAD, Bowley skew.

/// The `q` quantile (0..=1) of sorted `v` by linear interpolation.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            let frac = pos - lo as f64;
            sorted[lo] * (1.0 - frac) + sorted[hi] * frac
        }
    }
}

/// Median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(v, 0.5)
}

/// Median absolute deviation of `v` around its median.
pub fn mad(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    let m = median(&mut s);
    let mut dev: Vec<f64> = s.iter().map(|x| (x - m).abs()).collect();
    (m, median(&mut dev))
}

/// Bowley (quartile) skewness in -1..=1; 0 when the quartiles coincide.
pub fn bowley(sorted: &[f64]) -> f64 {
    let q1 = quantile(sorted, 0.25);
    let q2 = quantile(sorted, 0.5);
    let q3 = quantile(sorted, 0.75);
    if q3 - q1 <= f64::EPSILON || q2 == q1 || q2 == q3 {
        0.0
    } else {
        ((q3 + q1 - 2.0 * q2) / (q3 - q1)).clamp(-1.0, 1.0)
    }
}

/// How regular a series is, 0 to 1: high when the Bowley skew is near zero
/// and the MAD is small next to the median (RITA's two interval scores,
/// with the MAD taken relative to the median so any period scores alike).
pub fn regularity(values: &[f64]) -> (f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let skew = 1.0 - bowley(&sorted).abs();
    let (m, d) = mad(&sorted);
    let spread = if m <= 0.0 {
        if d <= 0.0 { 1.0 } else { 0.0 }
    } else {
        (1.0 - d / m).clamp(0.0, 1.0)
    };
    (skew, spread)
}
