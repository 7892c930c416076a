//! Timers: retransmission (RFC 6298), persist, delayed ACK, keepalive, and the
//! closing timers (TIME-WAIT's 2·MSL, FIN-WAIT-2's limit).
//!
//! Each timer is an absolute deadline; [`Tcb::poll_at`] is the earliest, and
//! [`Tcb::on_timeout`] runs every one that is due, so a caller that wakes late
//! loses nothing. Expiry only changes state and queues segments; the segments
//! themselves leave through `poll_transmit`.

use super::*;

impl Tcb {
    /// The earliest armed deadline, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        let t = &self.timers;
        let ack = match self.ack_due {
            AckDue::By(at) => Some(at),
            AckDue::Now | AckDue::No => None,
        };
        [t.rto, t.persist, t.keepalive, t.close, ack]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs every timer that is due at `now`.
    pub fn on_timeout(&mut self, now: Instant, mib: &TcpMib) {
        self.settle(mib);
        if self.timers.close.is_some_and(|at| at <= now) {
            self.timers.close = None;
            // TIME-WAIT's 2·MSL is over, or FIN-WAIT-2 waited long enough for a
            // FIN that is not coming; either way the connection is done.
            if matches!(self.state, State::TimeWait | State::FinWait2) {
                self.terminate(None);
                self.settle(mib);
                return;
            }
        }
        if let AckDue::By(at) = self.ack_due
            && at <= now
        {
            self.ack_due = AckDue::Now;
        }
        if self.timers.rto.is_some_and(|at| at <= now) {
            self.timers.rto = None;
            self.on_rto(now, mib);
        }
        if self.timers.persist.is_some_and(|at| at <= now) {
            self.probe_pending = true;
            self.persist_out = self.persist_out.saturating_add(1);
            self.timers.persist = Some(now + self.persist_interval());
        }
        if self.timers.keepalive.is_some_and(|at| at <= now) {
            self.on_keepalive(now, mib);
        }
        self.settle(mib);
    }

    /// RFC 6298 §5.4-5.7: retransmit the earliest unacknowledged segment, back
    /// off the timer, and (RFC 5681 §3.1) collapse the congestion window. After
    /// too many tries the connection is abandoned.
    fn on_rto(&mut self, now: Instant, mib: &TcpMib) {
        if self.snd_una == self.snd_max && self.state != State::SynReceived {
            return;
        }
        let limit = match self.state {
            State::SynSent | State::SynReceived => self.limits.syn_retries,
            _ => self.limits.data_retries,
        };
        mib.timeouts.bump();
        if self.retries >= limit {
            match self.state {
                State::SynSent | State::SynReceived => mib.attempt_fails.bump(),
                State::Established | State::CloseWait => mib.estab_resets.bump(),
                _ => {}
            }
            self.terminate(Some(ConnError::TimedOut));
            return;
        }
        self.retries = self.retries.saturating_add(1);
        self.rtt.on_timeout();
        let mss = u32::from(self.snd_mss);
        let flight = u32::try_from(self.snd_max - self.snd_una).unwrap_or(0);
        self.ssthresh = (flight / 2).max(2 * mss);
        self.cwnd = mss;
        self.recover = None;
        // RFC 6582 §4: duplicates of what was sent before the timeout must not
        // trigger a fast retransmit of what the timeout already resends.
        self.recover_floor = self.snd_max;
        self.dup_acks = 0;
        self.retransmit_now = false;
        self.sack_rexmit = false;
        // RFC 2018 §8: after a timeout the peer may have dropped what it
        // SACKed, so the scoreboard starts over.
        self.scoreboard.clear();
        self.rtt_probe = None;
        // Go back: everything from SND.UNA is sent again as the window allows.
        self.snd_nxt = match self.state {
            State::SynSent | State::SynReceived => self.iss,
            _ => self.snd_una,
        };
        self.timers.rto = Some(now + self.rtt.rto());
    }

    /// RFC 9293 §3.8.4: after `idle` without a word from the peer, probe every
    /// `interval`; after `probes` unanswered probes, give up.
    fn on_keepalive(&mut self, now: Instant, mib: &TcpMib) {
        self.timers.keepalive = None;
        if !self.keepalive || !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd_una != self.snd_max {
            // Data in flight has its own timer; look again after another idle period.
            self.arm_keepalive(now);
            return;
        }
        if u32::from(self.keepalive_out) >= self.limits.keepalive_probes {
            mib.keepalive_timeouts.bump();
            mib.estab_resets.bump();
            self.terminate(Some(ConnError::TimedOut));
            return;
        }
        self.keepalive_out = self.keepalive_out.saturating_add(1);
        self.keepalive_pending = true;
        self.timers.keepalive = Some(now + dur(self.limits.keepalive_interval_ms));
    }
}
