//! Why an inbound frame was not delivered.
//!
//! Every frame the parser turns away gets exactly one [`Drop`] reason, and every
//! reason has a stable metric name that never changes once published (dashboards
//! and alerts key on it). Invariant: `Drop::ALL` lists every variant once, in the
//! order of [`Drop::index`], so a counter block can be a plain array indexed by it.

/// The reason a frame was dropped by the wire layer.
///
/// Some reasons are the peer's errors (a bad checksum), some are inputs we simply do
/// not handle (a UDP datagram); [`Drop::is_error`] tells them apart for the
/// kernel-style `InErrs`/`InHdrErrors` totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Drop {
    /// Shorter than the IP header, or than the length the IP header claims.
    TruncatedIp,
    /// The first nibble is neither 4 nor 6.
    BadIpVersion,
    /// IPv4 IHL below 5 words, or total length shorter than the header.
    BadIpHeaderLen,
    /// The IPv4 header checksum does not verify.
    BadIpChecksum,
    /// An IPv4 fragment or an IPv6 Fragment header: we do not reassemble.
    Fragment,
    /// An IPv6 extension header chain that is truncated, too long, carries an option
    /// that asks to be discarded when not understood, or routes through us.
    BadIpv6ExtHeader,
    /// A source that cannot be a unicast peer (multicast, broadcast, unspecified,
    /// loopback, IPv4-mapped) or a destination TCP cannot use (multicast, broadcast).
    MartianAddress,
    /// Neither TCP nor ICMP (echo): UDP, SCTP, ESP, no next header, ...
    UnsupportedProtocol,
    /// Shorter than the fixed 20-octet TCP header.
    TruncatedTcp,
    /// TCP data offset below 5 words or past the end of the segment.
    BadTcpOffset,
    /// The TCP checksum (with its pseudo-header) does not verify.
    BadTcpChecksum,
    /// Source or destination port zero.
    BadTcpPort,
    /// A TCP option whose length is missing, below 2, or runs past the header.
    BadTcpOption,
    /// Shorter than the 8-octet ICMP echo header.
    TruncatedIcmp,
    /// The ICMP checksum (for ICMPv6, with its pseudo-header) does not verify.
    BadIcmpChecksum,
    /// A well-formed ICMP message other than an echo request: nothing to do.
    IcmpIgnored,
}

impl Drop {
    /// Every reason, in index order.
    pub const ALL: [Drop; 16] = [
        Drop::TruncatedIp,
        Drop::BadIpVersion,
        Drop::BadIpHeaderLen,
        Drop::BadIpChecksum,
        Drop::Fragment,
        Drop::BadIpv6ExtHeader,
        Drop::MartianAddress,
        Drop::UnsupportedProtocol,
        Drop::TruncatedTcp,
        Drop::BadTcpOffset,
        Drop::BadTcpChecksum,
        Drop::BadTcpPort,
        Drop::BadTcpOption,
        Drop::TruncatedIcmp,
        Drop::BadIcmpChecksum,
        Drop::IcmpIgnored,
    ];

    /// How many reasons there are.
    pub const COUNT: usize = Drop::ALL.len();

    /// A dense index in `0..COUNT`, for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The stable metric name.
    pub const fn name(self) -> &'static str {
        match self {
            Drop::TruncatedIp => "truncated_ip",
            Drop::BadIpVersion => "bad_ip_version",
            Drop::BadIpHeaderLen => "bad_ip_header_len",
            Drop::BadIpChecksum => "bad_ip_checksum",
            Drop::Fragment => "ip_fragment",
            Drop::BadIpv6ExtHeader => "bad_ipv6_ext_header",
            Drop::MartianAddress => "martian_address",
            Drop::UnsupportedProtocol => "unsupported_protocol",
            Drop::TruncatedTcp => "truncated_tcp",
            Drop::BadTcpOffset => "bad_tcp_offset",
            Drop::BadTcpChecksum => "bad_tcp_checksum",
            Drop::BadTcpPort => "bad_tcp_port",
            Drop::BadTcpOption => "bad_tcp_option",
            Drop::TruncatedIcmp => "truncated_icmp",
            Drop::BadIcmpChecksum => "bad_icmp_checksum",
            Drop::IcmpIgnored => "icmp_ignored",
        }
    }

    /// The frame was damaged or illegal, as opposed to merely unhandled.
    pub const fn is_error(self) -> bool {
        !matches!(
            self,
            Drop::Fragment | Drop::UnsupportedProtocol | Drop::IcmpIgnored
        )
    }

    /// The frame reached TCP: it counts in `InSegs`, and, when [`is_error`](Self::is_error), in `InErrs`.
    pub const fn is_tcp(self) -> bool {
        matches!(
            self,
            Drop::TruncatedTcp
                | Drop::BadTcpOffset
                | Drop::BadTcpChecksum
                | Drop::BadTcpPort
                | Drop::BadTcpOption
        )
    }

    /// A checksum failed: counts in the kernel's `InCsumErrors`.
    pub const fn is_checksum(self) -> bool {
        matches!(
            self,
            Drop::BadIpChecksum | Drop::BadTcpChecksum | Drop::BadIcmpChecksum
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_at_its_index_with_a_unique_name() {
        for (i, reason) in Drop::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        let mut names: Vec<_> = Drop::ALL.iter().map(|d| d.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Drop::COUNT);
    }
}
