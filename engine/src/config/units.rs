//! Docker's units: sizes (`512m`, go-units' `RAMInBytes`), `--memory-swap`
//! with its `-1`, and `--cpus` as an exact number of nano-CPUs.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::FlagError;

/// `/dev/shm` when `--shm-size` is not given: 64 MiB, as docker.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// The smallest memory limit docker accepts (a container below it would
/// not even start its runtime reliably).
const MIN_MEMORY: u64 = 6 << 20;

/// A size in bytes as go-units' `RAMInBytes` reads it: a number (with a
/// fraction if wanted), an optional space, then an optional `k|m|g|t|p`
/// (powers of 1024), an optional `i` and an optional `b`, in any case.
pub fn parse_size(text: &str) -> Result<u64, FlagError> {
    let invalid = || FlagError::InvalidSize(text.to_owned());
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, rest) = text.split_at(number_end);
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let mut chars = rest.chars().peekable();
    let power = match chars.peek().map(char::to_ascii_lowercase) {
        Some(letter @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            chars.next();
            "kmgtp".find(letter).map_or(0, |i| i + 1)
        }
        _ => 0,
    };
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'i')) {
        chars.next();
    }
    if chars.peek().is_some_and(|c| c.eq_ignore_ascii_case(&'b')) {
        chars.next();
    }
    if chars.next().is_some() {
        return Err(invalid());
    }
    let multiplier = 1u64 << (10 * power);
    // `\d+(\.\d+)*`: digits first, and no empty part around a dot.
    if number.is_empty() || number.split('.').any(str::is_empty) {
        return Err(invalid());
    }
    match number.split_once('.') {
        None => number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .ok_or_else(invalid),
        Some(_) => {
            // "1.5.3" passes the pattern but not Go's ParseFloat.
            let value = number.parse::<f64>().map_err(|_| invalid())? * multiplier as f64;
            // Truncated, as docker's int64(size * mul).
            if value < u64::MAX as f64 {
                Ok(value as u64)
            } else {
                Err(invalid())
            }
        }
    }
}

/// `-m/--memory`: bytes; 0 means no limit.
pub fn parse_memory(text: &str) -> Result<u64, FlagError> {
    parse_size(text)
}

/// `--shm-size`: bytes; 0 means docker's default (64 MiB).
pub fn parse_shm_size(text: &str) -> Result<u64, FlagError> {
    match parse_size(text)? {
        0 => Ok(DEFAULT_SHM_SIZE),
        size => Ok(size),
    }
}

/// `--memory-swap`: memory plus swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemorySwap {
    /// `-1`: swap is not limited.
    Unlimited,
    /// Bytes of memory plus swap.
    Limit(u64),
}

/// `--memory-swap`: `-1` or a size. 0 is a limit of 0, which the spec
/// treats as "not given", as docker does.
pub fn parse_memory_swap(text: &str) -> Result<MemorySwap, FlagError> {
    if text == "-1" {
        return Ok(MemorySwap::Unlimited);
    }
    parse_size(text).map(MemorySwap::Limit)
}

/// `--cpus` as docker keeps it (`NanoCpus`): exact, so `1.5` is
/// 1_500_000_000 and no float rounding reaches the CFS quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NanoCpus(pub i64);

impl NanoCpus {
    /// CFS period docker uses with `--cpus`, in microseconds.
    pub const PERIOD: u64 = 100_000;

    /// The CFS quota for [`NanoCpus::PERIOD`], as docker computes it.
    pub fn quota(self) -> i64 {
        (i128::from(self.0) * i128::from(Self::PERIOD) / 1_000_000_000) as i64
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl fmt::Display for NanoCpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

/// `--cpus`: a rational number as Go's `big.Rat` reads it (`1.5`, `3/2`,
/// `15e-1`); at most nine decimals ("value is too precise" beyond). The
/// range (0.01 up to the host's CPUs) is checked when the spec is built.
pub fn parse_cpus(text: &str) -> Result<NanoCpus, FlagError> {
    let not_rational = || FlagError::NotRational(text.to_owned());
    let (num, den) = parse_rational(text).ok_or_else(not_rational)?;
    let nano = num.checked_mul(1_000_000_000).ok_or_else(not_rational)?;
    if nano % den != 0 {
        return Err(FlagError::TooPrecise);
    }
    i64::try_from(nano / den)
        .map(NanoCpus)
        .map_err(|_| not_rational())
}

/// `[-]A/B` or `[-]D[.D][e[-]N]` as numerator and positive denominator.
fn parse_rational(text: &str) -> Option<(i128, i128)> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits = |s: &str| -> Option<i128> {
        if s.is_empty() || s.len() > 30 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (num, den) = if let Some((a, b)) = body.split_once('/') {
        let den = digits(b).filter(|d| *d != 0)?;
        (digits(a)?, den)
    } else {
        let (mantissa, exponent) = match body.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i32>().ok().filter(|e| e.abs() <= 30)?),
            None => (body, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let joined = format!("{whole}{fraction}");
        let mut num = digits(&joined)?;
        let mut den = 10i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        let scale = 10i128.checked_pow(exponent.unsigned_abs())?;
        if exponent >= 0 {
            num = num.checked_mul(scale)?;
        } else {
            den = den.checked_mul(scale)?;
        }
        (num, den)
    };
    Some((if negative { -num } else { num }, den))
}

impl super::Resources {
    /// Docker's checks across the resource flags, with `host_cpus` the
    /// CPUs this host can run the container on.
    pub fn validate(&self, host_cpus: usize) -> Result<(), FlagError> {
        let memory = self.memory.filter(|m| *m > 0);
        if memory.is_some_and(|m| m < MIN_MEMORY) {
            return Err(FlagError::MemoryTooLow);
        }
        if let Some(MemorySwap::Limit(swap)) =
            self.memory_swap.filter(|s| *s != MemorySwap::Limit(0))
        {
            match memory {
                None => return Err(FlagError::SwapWithoutMemory),
                Some(memory) if swap < memory => return Err(FlagError::SwapBelowMemory),
                Some(_) => {}
            }
        }
        if let Some(cpus) = self.cpus.filter(|c| c.0 != 0) {
            let max = i64::try_from(host_cpus)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000_000);
            if cpus.0 < 10_000_000 || cpus.0 > max {
                return Err(FlagError::CpusRange(host_cpus));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Resources;

    #[test]
    fn sizes_in_docker_units() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_size("64 k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("10b").unwrap(), 10);
    }

    #[test]
    fn bad_sizes_read_like_docker() {
        for bad in [
            "", "abc", "-1", "1x", "m", "1.m", ".5m", "1..5m", "1.5.3m", "1 m b", "1mm",
        ] {
            assert_eq!(
                parse_size(bad).unwrap_err().to_string(),
                format!("invalid size: '{bad}'"),
                "{bad}"
            );
        }
        assert!(parse_size("99999999999p").is_err());
    }

    #[test]
    fn memory_swap_takes_minus_one() {
        assert_eq!(parse_memory_swap("-1").unwrap(), MemorySwap::Unlimited);
        assert_eq!(parse_memory_swap("1g").unwrap(), MemorySwap::Limit(1 << 30));
        assert!(parse_memory_swap("-2").is_err());
    }

    #[test]
    fn shm_size_zero_is_the_default() {
        assert_eq!(parse_shm_size("0").unwrap(), DEFAULT_SHM_SIZE);
        assert_eq!(parse_shm_size("128m").unwrap(), 128 << 20);
    }

    #[test]
    fn cpus_are_exact() {
        assert_eq!(parse_cpus("1.5").unwrap(), NanoCpus(1_500_000_000));
        assert_eq!(parse_cpus("3/2").unwrap(), NanoCpus(1_500_000_000));
        assert_eq!(parse_cpus("15e-1").unwrap(), NanoCpus(1_500_000_000));
        assert_eq!(parse_cpus(".5").unwrap(), NanoCpus(500_000_000));
        assert_eq!(parse_cpus("0.000000001").unwrap(), NanoCpus(1));
        assert_eq!(parse_cpus("2").unwrap().quota(), 200_000);
        assert_eq!(parse_cpus("1.5").unwrap().quota(), 150_000);
        assert_eq!(parse_cpus("0.01").unwrap().quota(), 1_000);
    }

    #[test]
    fn bad_cpus_read_like_docker() {
        assert_eq!(
            parse_cpus("abc").unwrap_err().to_string(),
            "failed to parse abc as a rational number"
        );
        assert_eq!(
            parse_cpus("1/0").unwrap_err().to_string(),
            "failed to parse 1/0 as a rational number"
        );
        assert_eq!(
            parse_cpus("0.0000000001").unwrap_err().to_string(),
            "value is too precise"
        );
        assert!(parse_cpus("").is_err());
        assert!(parse_cpus(".").is_err());
    }

    #[test]
    fn resource_checks_read_like_docker() {
        let check = |change: &dyn Fn(&mut Resources)| {
            let mut r = Resources::default();
            change(&mut r);
            r.validate(2).err().map(|e| e.to_string())
        };
        assert_eq!(check(&|_| {}), None);
        assert_eq!(
            check(&|r| r.memory = Some(1 << 20)).as_deref(),
            Some("Minimum memory limit allowed is 6MB")
        );
        assert_eq!(
            check(&|r| r.memory_swap = Some(MemorySwap::Limit(1 << 30))).as_deref(),
            Some("You should always set the Memory limit when using Memoryswap limit, see usage")
        );
        assert_eq!(
            check(&|r| {
                r.memory = Some(1 << 30);
                r.memory_swap = Some(MemorySwap::Limit(1 << 29));
            })
            .as_deref(),
            Some("Minimum memoryswap limit should be larger than memory limit, see usage")
        );
        assert_eq!(
            check(&|r| {
                r.memory = Some(1 << 30);
                r.memory_swap = Some(MemorySwap::Unlimited);
            }),
            None
        );
        assert_eq!(
            check(&|r| r.cpus = Some(NanoCpus(3_000_000_000))).as_deref(),
            Some("Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available")
        );
        assert!(check(&|r| r.cpus = Some(NanoCpus(-1))).is_some());
        assert!(check(&|r| r.cpus = Some(NanoCpus(1_000_000))).is_some());
        assert_eq!(check(&|r| r.cpus = Some(NanoCpus(2_000_000_000))), None);
    }
}
