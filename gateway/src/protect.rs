//! Protection against floods: per-write-key and per-IP rate limits (governor), a cap on
//! requests in flight that sheds load before memory grows, and shedding while the CPU is
//! saturated, before requests queue up behind it.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitConfig;
use crate::error::GatewayError;
use crate::lag::SchedulingLag;

/// The limiters and the in-flight counter shared by every request.
#[derive(Debug)]
pub struct Protection {
    per_key: Option<DefaultKeyedRateLimiter<Arc<str>>>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    lag: SchedulingLag,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_sec: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_sec)?;
    let burst = NonZeroU32::new(burst.max(per_sec)).unwrap_or(rate);
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

impl Protection {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            per_key: limiter(config.per_write_key_per_sec, config.per_write_key_burst),
            per_ip: limiter(config.per_ip_per_sec, config.per_ip_burst),
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight: config.max_in_flight.max(1),
            lag: SchedulingLag::new(Duration::from_millis(config.shed_lag_ms)),
        }
    }

    /// Counts a request in flight until the guard drops; sheds it when the cap is reached, or
    /// while the runtime runs tasks later than `rate_limit.shed_lag_ms`.
    pub fn enter(&self) -> Result<InFlight, GatewayError> {
        if let Some(lag) = self.lag.excess() {
            return Err(GatewayError::CpuOverloaded { lag_ms: lag.as_millis() as u64 });
        }
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(GatewayError::Overloaded);
        }
        Ok(InFlight(self.in_flight.clone()))
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), GatewayError> {
        check(self.per_ip.as_ref(), &ip, "client IP")
    }

    pub fn check_source(&self, source: &Arc<str>) -> Result<(), GatewayError> {
        check(self.per_key.as_ref(), source, "write key")
    }

    /// Forgets idle keys so the limiters' maps do not grow without bound.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_key {
            limiter.retain_recent();
        }
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
    scope: &'static str,
) -> Result<(), GatewayError> {
    let Some(limiter) = limiter else { return Ok(()) };
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        GatewayError::RateLimited {
            scope,
            retry_after_secs: wait.as_secs() + u64::from(wait > Duration::ZERO && wait.subsec_nanos() > 0),
        }
    })
}

/// A request counted in flight.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_limit_answers_with_a_wait() {
        let protection =
            Protection::new(&RateLimitConfig { per_ip_per_sec: 1, per_ip_burst: 2, ..RateLimitConfig::default() });
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(protection.check_ip(ip).is_ok());
        assert!(protection.check_ip(ip).is_ok());
        match protection.check_ip(ip) {
            Err(GatewayError::RateLimited { retry_after_secs, .. }) => assert!(retry_after_secs >= 1),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(protection.check_ip("192.0.2.2".parse().expect("ip")).is_ok(), "limits are per IP");
    }

    #[test]
    fn in_flight_cap_sheds_and_recovers() {
        let protection = Protection::new(&RateLimitConfig { max_in_flight: 1, ..RateLimitConfig::default() });
        let first = protection.enter().expect("first request");
        assert!(matches!(protection.enter(), Err(GatewayError::Overloaded)));
        drop(first);
        assert!(protection.enter().is_ok());
    }
}
