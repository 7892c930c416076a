//! A pcap file writer (the classic libpcap format, LINKTYPE_RAW: each record is
//! an IPv4 or IPv6 packet with no link header), bounded in size.
//!
//! Invariant: the file never grows past `max_bytes`; the record that would
//! cross the bound is not written, and nothing after it is either (a capture
//! with a hole in the middle would mislead more than a short one).

use std::io::{self, Write};

/// Bytes of the global header.
pub const FILE_HEADER_LEN: usize = 24;
/// Bytes of each record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// LINKTYPE_RAW: raw IPv4/IPv6, version in the first nibble.
pub const LINKTYPE_RAW: u32 = 101;
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;

/// A size-bounded pcap writer over any `Write`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    written: u64,
    max_bytes: u64,
    snaplen: u32,
    full: bool,
    dropped: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header; records up to `snaplen` bytes each are kept.
    pub fn new(mut out: W, snaplen: u32, max_bytes: u64) -> io::Result<PcapWriter<W>> {
        let mut h = [0u8; FILE_HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter {
            out,
            written: FILE_HEADER_LEN as u64,
            max_bytes,
            snaplen,
            full: false,
            dropped: 0,
        })
    }

    /// Appends one packet seen at `unix_nanos`; returns false once the
    /// bound has been reached (the packet was not written).
    pub fn record(&mut self, unix_nanos: u64, packet: &[u8]) -> io::Result<bool> {
        let caplen = packet.len().min(self.snaplen as usize);
        let size = (RECORD_HEADER_LEN + caplen) as u64;
        if self.full || self.written + size > self.max_bytes {
            self.full = true;
            self.dropped += 1;
            return Ok(false);
        }
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&((unix_nanos / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&(((unix_nanos % 1_000_000_000) / 1000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(packet.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&packet[..caplen])?;
        self.written += size;
        Ok(true)
    }

    /// Bytes in the file so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Packets not written because the bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_microsecond_pcap_with_linktype_raw() {
        let w = PcapWriter::new(Vec::new(), 65535, 1 << 20).unwrap();
        let h = &w.out;
        assert_eq!(h.len(), FILE_HEADER_LEN);
        assert_eq!(&h[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u16::from_le_bytes([h[4], h[5]]), 2);
        assert_eq!(u16::from_le_bytes([h[6], h[7]]), 4);
        assert_eq!(u32::from_le_bytes(h[16..20].try_into().unwrap()), 65535);
        assert_eq!(u32::from_le_bytes(h[20..24].try_into().unwrap()), 101);
    }

    #[test]
    fn record_carries_time_and_lengths() {
        let mut w = PcapWriter::new(Vec::new(), 4, 1 << 20).unwrap();
        assert!(w.record(3_000_002_000, &[0x45, 1, 2, 3, 4, 5]).unwrap());
        let r = &w.out[FILE_HEADER_LEN..];
        assert_eq!(u32::from_le_bytes(r[0..4].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(r[4..8].try_into().unwrap()), 2);
        assert_eq!(
            u32::from_le_bytes(r[8..12].try_into().unwrap()),
            4,
            "caplen is the snaplen"
        );
        assert_eq!(
            u32::from_le_bytes(r[12..16].try_into().unwrap()),
            6,
            "len is the packet's"
        );
        assert_eq!(&r[16..], &[0x45, 1, 2, 3]);
    }

    #[test]
    fn file_never_exceeds_the_bound_and_stops_at_the_first_miss() {
        let max = (FILE_HEADER_LEN + 2 * (RECORD_HEADER_LEN + 10) + 5) as u64;
        let mut w = PcapWriter::new(Vec::new(), 65535, max).unwrap();
        assert!(w.record(0, &[0x45; 10]).unwrap());
        assert!(w.record(0, &[0x45; 10]).unwrap());
        assert!(!w.record(0, &[0x45; 10]).unwrap());
        assert!(
            !w.record(0, &[0x45; 1]).unwrap(),
            "no holes: nothing after a miss"
        );
        assert!(w.out.len() as u64 <= max);
        assert_eq!(w.written(), w.out.len() as u64);
        assert_eq!(w.dropped(), 2);
    }
}
