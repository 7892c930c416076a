//! The TUN device: one `IFF_MULTI_QUEUE` queue per worker, created (or
//! attached to) by name, with the kernel side's addresses, MTU and link up.
//!
//! Every queue is opened and every address set on the calling thread, so
//! that [`netns`](super::netns) can run this whole function inside another
//! network namespace: a TUN queue and the device it names belong to the
//! namespace of the thread that opened them, and stay there.
//!
//! With `--offload on` every queue is opened with `IFF_VNET_HDR` and
//! `TUNSETOFFLOAD` (`TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`, which tun-rs's
//! `offload(true)` sets on the first queue and on every clone); where the
//! kernel refuses either, the device is opened again without, the reason
//! logged once and reported as `smrnet_offload_refused` (see
//! [`super::offload`]).

use std::io;

use tun_rs::{DeviceBuilder, SyncDevice};

use super::config::{Config, OffloadMode};
use super::offload;

/// Opens `cfg.workers` queues of `cfg.device`, configured unless
/// `cfg.attach`, with offload if asked and the kernel agrees.
pub fn open_queues(cfg: &Config) -> io::Result<(Vec<SyncDevice>, offload::Status)> {
    let requested = cfg.offload != OffloadMode::Off;
    if requested {
        let tried = if cfg.offload == OffloadMode::ForceFallback {
            Err(io::Error::other(
                "refusal forced by --offload force-fallback",
            ))
        } else {
            open_with(cfg, true)
        };
        match tried {
            Ok(queues) => {
                tracing::info!("offload: TSO and checksum offload on every TUN queue");
                let status = offload::Status {
                    requested,
                    enabled: true,
                };
                return Ok((queues, status));
            }
            Err(e) => tracing::warn!(
                error = %e,
                "offload: IFF_VNET_HDR or TUNSETOFFLOAD was refused; one frame per system \
                 call and software checksums, as with --offload off"
            ),
        }
    } else {
        tracing::info!("offload: off (--offload off)");
    }
    let status = offload::Status {
        requested,
        enabled: false,
    };
    Ok((open_with(cfg, false)?, status))
}

fn open_with(cfg: &Config, offload: bool) -> io::Result<Vec<SyncDevice>> {
    let mut builder = DeviceBuilder::new()
        .offload(offload)
        .name(&cfg.device)
        .multi_queue(true)
        .packet_information(false);
    if !cfg.attach {
        builder = builder.mtu(cfg.mtu);
        if let Some(v4) = cfg.tun_ipv4 {
            builder = builder.ipv4(v4.addr, v4.prefix, None);
        }
        if let Some(v6) = cfg.tun_ipv6 {
            builder = builder.ipv6(v6.addr, v6.prefix);
        }
        builder = builder.enable(true);
    }
    let first = builder.build_sync().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot open TUN device {} (needs root or CAP_NET_ADMIN, and /dev/net/tun): {e}",
                cfg.device
            ),
        )
    })?;
    let mut queues = Vec::with_capacity(cfg.workers);
    for i in 1..cfg.workers {
        let q = first.try_clone().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open queue {i} of TUN device {}: {e}", cfg.device),
            )
        })?;
        queues.push(q);
    }
    queues.insert(0, first);
    for q in &queues {
        q.set_nonblocking(true)?;
    }
    Ok(queues)
}
