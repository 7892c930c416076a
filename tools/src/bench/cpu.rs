//! CPU time as Linux accounts it, for the end-to-end benches.
//!
//! Two views. [`process_cpu`] is one process's user + system time from
//! `/proc/<pid>/stat`, every thread included: for smrnetd that counts the
//! TUN reads and writes its workers make (the kernel work done in their
//! system calls). [`machine_busy`] is the whole machine's busy time from the
//! first line of `/proc/stat` (user, nice, system, irq, softirq, steal;
//! idle and iowait left out): the only honest figure for a kernel TCP
//! server, whose protocol work runs in softirq context on whichever CPU the
//! packet arrived on and is charged to no process at all. Both are counted
//! in clock ticks (usually 10 ms), so a measurement shorter than a few
//! hundred milliseconds is coarse.

use std::io;
use std::time::Duration;

/// User + system CPU time of every thread of `pid` so far.
pub fn process_cpu(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_process(&stat, clock_ticks()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: no utime/stime fields"),
        )
    })
}

/// Busy CPU time of the whole machine (all CPUs added) since boot.
pub fn machine_busy() -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    parse_machine(&stat, clock_ticks()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "/proc/stat: no aggregate cpu line",
        )
    })
}

/// Fields 14 and 15 (utime, stime, in clock ticks) of `/proc/PID/stat`,
/// counted after the command name, which is in parentheses and may itself
/// contain spaces and parentheses.
fn parse_process(stat: &str, ticks_per_sec: u64) -> Option<Duration> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_ascii_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(ticks_to_duration(ticks, ticks_per_sec))
}

/// The `cpu ` line of `/proc/stat`: user nice system idle iowait irq
/// softirq steal [guest guest_nice]; guest time is already inside user.
fn parse_machine(stat: &str, ticks_per_sec: u64) -> Option<Duration> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_ascii_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if f.len() < 8 {
        return None;
    }
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .try_fold(0u64, |acc, &i| acc.checked_add(f[i]))?;
    Some(ticks_to_duration(busy, ticks_per_sec))
}

fn ticks_to_duration(ticks: u64, ticks_per_sec: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_sec.max(1) as f64)
}

fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_read_after_a_name_with_spaces_and_parens() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime ...
        let stat = "4242 (smr netd (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 3 0";
        assert_eq!(parse_process(stat, 100), Some(Duration::from_secs(3)));
        assert_eq!(parse_process("4242 (x) S 1 2", 100), None);
        assert_eq!(parse_process("garbage", 100), None);
    }

    #[test]
    fn machine_busy_counts_user_system_irq_softirq_steal_but_not_idle_or_iowait() {
        let stat = "cpu  100 10 50 9000 700 5 35 0 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n";
        // 100 + 10 + 50 + 5 + 35 + 0 ticks; idle 9000, iowait 700, guest 40
        // (already in user) left out.
        assert_eq!(parse_machine(stat, 100), Some(Duration::from_secs(2)));
        assert_eq!(parse_machine("cpu0 1 2 3 4 5 6 7 8\n", 100), None);
        assert_eq!(parse_machine("cpu  1 2 3\n", 100), None);
        assert_eq!(parse_machine("cpu  1 2 x 4 5 6 7 8\n", 100), None);
    }
}
