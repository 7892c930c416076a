//! The flood's rate limiter: a token bucket on a caller-supplied clock, so a
//! test can drive it with a fake one. Tokens accrue at `rate` per second up
//! to `burst`; a sender asks for a batch and gets what is available, so over
//! any window of length T at most `rate * T + burst` packets leave.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Duration,
}

impl TokenBucket {
    /// A bucket that starts empty at time `now` (measured from any fixed
    /// origin). `rate` is packets per second (> 0); `burst` at least 1.
    pub fn new(rate: f64, burst: u32, now: Duration) -> TokenBucket {
        TokenBucket {
            rate,
            burst: f64::from(burst.max(1)),
            tokens: 0.0,
            last: now,
        }
    }

    /// Take up to `want` tokens at time `now`; returns how many were taken.
    /// A clock that goes backwards adds nothing.
    pub fn take(&mut self, now: Duration, want: u32) -> u32 {
        if now > self.last {
            let dt = (now - self.last).as_secs_f64();
            self.tokens = (self.tokens + dt * self.rate).min(self.burst);
            self.last = now;
        }
        let granted = self.tokens.floor().min(f64::from(want)).max(0.0);
        self.tokens -= granted;
        granted as u32
    }

    /// How long until at least one token is there (zero if one is).
    pub fn wait_hint(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }
}
