//! Go-style durations as Pebble reads and prints them.
//!
//! Parsing accepts Go's `time.ParseDuration` syntax (`300ms`, `2m`, `2m0s`,
//! `1h2m3.5s`, `1.5µs`); formatting reproduces Go's `time.Duration.String()`
//! (`2m0s`, `1h0m0s`, `300ms`), which is what `GET /v1/plan` prints. Equality
//! compares the length, so `2m` and `2m0s` are equal.
//!
//! Hand-written on purpose: plans are compared with what Pebble prints, so
//! this must be Go's exact syntax both ways, which general-purpose duration
//! crates (their own human-readable formats) do not read and print.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest duration Go can represent (`math.MaxInt64` nanoseconds).
const MAX_NANOS: u128 = i64::MAX as u128;

/// A non-negative duration written in Go syntax.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoDuration(Duration);

impl GoDuration {
    pub const ZERO: GoDuration = GoDuration(Duration::ZERO);

    pub fn from_secs(secs: u64) -> Self {
        GoDuration(Duration::from_secs(secs))
    }

    pub fn from_millis(millis: u64) -> Self {
        GoDuration(Duration::from_millis(millis))
    }

    pub fn as_duration(&self) -> Duration {
        self.0
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration(d)
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Self {
        d.0
    }
}

/// Why a string is not a valid Go duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct ParseDurationError {
    input: String,
    reason: &'static str,
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

impl FromStr for GoDuration {
    type Err = ParseDurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseDurationError {
            input: input.to_string(),
            reason,
        };
        let (negative, mut s) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input.strip_prefix('+').unwrap_or(input)),
        };
        if s == "0" {
            return Ok(GoDuration::ZERO);
        }
        if s.is_empty() {
            return Err(fail("empty"));
        }
        let mut total: u128 = 0;
        while !s.is_empty() {
            // Integer part.
            let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let int_digits = &s[..int_len];
            s = &s[int_len..];
            // Optional fraction.
            let mut frac_digits = "";
            if let Some(rest) = s.strip_prefix('.') {
                let frac_len = rest.bytes().take_while(u8::is_ascii_digit).count();
                frac_digits = &rest[..frac_len];
                s = &rest[frac_len..];
            }
            if int_digits.is_empty() && frac_digits.is_empty() {
                return Err(fail("expected a number"));
            }
            let unit_len = s
                .char_indices()
                .find(|(_, c)| c.is_ascii_digit() || *c == '.')
                .map(|(i, _)| i)
                .unwrap_or(s.len());
            let unit = &s[..unit_len];
            s = &s[unit_len..];
            if unit.is_empty() {
                return Err(fail("missing unit"));
            }
            let scale = unit_nanos(unit).ok_or_else(|| fail("unknown unit"))?;

            let mut int: u128 = 0;
            for d in int_digits.bytes() {
                int = int * 10 + u128::from(d - b'0');
                if int > MAX_NANOS {
                    return Err(fail("overflow"));
                }
            }
            let mut value = int.checked_mul(scale).ok_or_else(|| fail("overflow"))?;
            // Fraction: digits beyond nanosecond precision are truncated.
            let mut frac: u128 = 0;
            let mut frac_scale: u128 = 1;
            for d in frac_digits.bytes().take(20) {
                frac = frac * 10 + u128::from(d - b'0');
                frac_scale *= 10;
            }
            value += frac * scale / frac_scale;
            total += value;
            if total > MAX_NANOS {
                return Err(fail("overflow"));
            }
        }
        if negative && total != 0 {
            return Err(fail("negative durations are not supported"));
        }
        let secs = (total / 1_000_000_000) as u64;
        let nanos = (total % 1_000_000_000) as u32;
        Ok(GoDuration(Duration::new(secs, nanos)))
    }
}

/// Writes `value / 10^prec` with the fraction trimmed of trailing zeros.
fn write_frac(out: &mut String, value: u128, prec: u32) {
    let pow = 10u128.pow(prec);
    out.push_str(&(value / pow).to_string());
    let frac = value % pow;
    if frac != 0 {
        let digits = format!("{frac:0width$}", width = prec as usize);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        let mut out = String::new();
        if nanos == 0 {
            out.push_str("0s");
        } else if nanos < 1_000 {
            out.push_str(&format!("{nanos}ns"));
        } else if nanos < 1_000_000 {
            write_frac(&mut out, nanos, 3);
            out.push_str("\u{b5}s");
        } else if nanos < 1_000_000_000 {
            write_frac(&mut out, nanos, 6);
            out.push_str("ms");
        } else {
            let secs = nanos / 1_000_000_000;
            let sub = nanos % 1_000_000_000;
            let minutes = secs / 60;
            let hours = minutes / 60;
            if hours > 0 {
                out.push_str(&format!("{hours}h"));
            }
            if minutes > 0 {
                out.push_str(&format!("{}m", minutes % 60));
            }
            write_frac(&mut out, (secs % 60) * 1_000_000_000 + sub, 9);
            out.push('s');
        }
        f.write_str(&out)
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = GoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration such as \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoDuration, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoDuration, E> {
                // Go accepts a bare "0" only.
                if v == 0 {
                    Ok(GoDuration::ZERO)
                } else {
                    Err(E::custom(format!("duration {v} needs a unit")))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoDuration, E> {
                self.visit_u64(u64::try_from(v).map_err(|_| E::custom("negative duration"))?)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Duration {
        s.parse::<GoDuration>().unwrap().as_duration()
    }

    #[test]
    fn parse_go_syntax() {
        assert_eq!(p("300ms"), Duration::from_millis(300));
        assert_eq!(p("2m"), Duration::from_secs(120));
        assert_eq!(p("2m0s"), Duration::from_secs(120));
        assert_eq!(p("1h2m3.5s"), Duration::from_millis(3_723_500));
        assert_eq!(p("4.000s"), Duration::from_secs(4));
        assert_eq!(p("0"), Duration::ZERO);
        assert_eq!(p("-0s"), Duration::ZERO);
        assert_eq!(p("0s"), Duration::ZERO);
        assert_eq!(p("+5s"), Duration::from_secs(5));
        assert_eq!(p("1.5us"), Duration::from_nanos(1_500));
        assert_eq!(p("1.5\u{b5}s"), Duration::from_nanos(1_500));
        assert_eq!(p("1.5\u{3bc}s"), Duration::from_nanos(1_500));
        assert_eq!(p("7ns"), Duration::from_nanos(7));
        assert_eq!(p(".5s"), Duration::from_millis(500));
        assert_eq!(p("1.s"), Duration::from_secs(1));
        assert_eq!(p("1h1h"), Duration::from_secs(7200));
        assert_eq!(p("0.1234567891s"), Duration::from_nanos(123_456_789));
        assert_eq!(
            p("2562047h47m16.854775807s"),
            Duration::from_nanos(i64::MAX as u64)
        );
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "5",
            "s",
            "1x",
            "1.2.3s",
            "-5s",
            "2562047h47m16.854775808s",
            ".s",
            "1 s",
            "h1",
        ] {
            assert!(
                bad.parse::<GoDuration>().is_err(),
                "{bad:?} should not parse"
            );
        }
        let e = "10 parsecs".parse::<GoDuration>().unwrap_err();
        assert!(e.to_string().contains("10 parsecs"));
    }

    #[test]
    fn format_like_go() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(1_100), "1.1\u{b5}s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_micros(2_500), "2.5ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(120), "2m0s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(3_723_500), "1h2m3.5s"),
            (Duration::from_secs(30), "30s"),
            (
                Duration::from_nanos(i64::MAX as u64),
                "2562047h47m16.854775807s",
            ),
        ];
        for (d, want) in cases {
            assert_eq!(GoDuration::from(d).to_string(), want);
            // And the printed form parses back to the same value.
            assert_eq!(p(want), d);
        }
    }

    #[test]
    fn equality_ignores_spelling() {
        assert_eq!(
            "2m".parse::<GoDuration>().unwrap(),
            "2m0s".parse::<GoDuration>().unwrap()
        );
        assert_eq!(
            "1h".parse::<GoDuration>().unwrap(),
            "60m".parse::<GoDuration>().unwrap()
        );
    }

    #[test]
    fn serde_as_string() {
        let d = GoDuration::from_secs(120);
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2m0s\"");
        let back: GoDuration = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<GoDuration>("\"2 minutes\"").is_err());
    }
}
