//! Summary statistics of timing samples.

/// Median and 90th percentile of a set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub p90: f64,
}

impl Summary {
    /// `None` for no samples. p90 is the nearest-rank percentile: the
    /// smallest sample that at least 90% of the samples do not exceed.
    pub fn of(samples: &[f64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let rank = (n * 9).div_ceil(10).max(1);
        Some(Self {
            median,
            p90: sorted[rank - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn odd_and_even_counts() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]).expect("summary");
        assert_eq!(odd.median, 2.0);
        assert_eq!(odd.p90, 3.0);
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]).expect("summary");
        assert_eq!(even.median, 2.5);
        assert_eq!(even.p90, 4.0);
    }

    #[test]
    fn p90_of_twenty_is_the_eighteenth() {
        let samples: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = Summary::of(&samples).expect("summary");
        assert_eq!(s.median, 10.5);
        assert_eq!(s.p90, 18.0);
    }
}
