//! A pcap file writer (the classic libpcap format, LINKTYPE_RAW: each record is
//! an IPv4 or IPv6 packet with no link header), bounded in size.
//!
//! Invariant: the file never grows past `max_bytes`; the record that would
//! cross the bound is not written, and nothing after it is either (a capture
//! with a hole in the middle would mislead more than a short one). The same
//! holds for a write error (a full disk): the first one is returned, and the
//! capture has stopped for good — nothing is written after it.

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
    /// A write or flush failed: nothing more is written.
    failed: bool,
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
            failed: false,
            dropped: 0,
        })
    }

    /// Appends one packet seen at `unix_nanos`; returns false once the
    /// bound has been reached or a write has failed (the packet was not
    /// written), and the error of the write that stopped the capture, once.
    pub fn record(&mut self, unix_nanos: u64, packet: &[u8]) -> io::Result<bool> {
        let caplen = packet.len().min(self.snaplen as usize);
        let size = (RECORD_HEADER_LEN + caplen) as u64;
        if self.failed {
            self.dropped += 1;
            return Ok(false);
        }
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
        if let Err(e) = self
            .out
            .write_all(&h)
            .and_then(|()| self.out.write_all(&packet[..caplen]))
        {
            self.failed = true;
            self.dropped += 1;
            return Err(e);
        }
        self.written += size;
        Ok(true)
    }

    /// Whether a write error has stopped the capture.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Bytes in the file so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Packets not written because the bound was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Flushes the underlying writer (nothing, once a write has failed).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        let r = self.out.flush();
        self.failed = r.is_err();
        r
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

    /// A writer that takes `room` bytes, then fails like a full disk, and
    /// counts the writes it was asked for.
    struct Disk {
        room: usize,
        calls: usize,
    }

    impl Write for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn full_disk_stops_the_capture_with_one_error() {
        let disk = Disk {
            room: FILE_HEADER_LEN + RECORD_HEADER_LEN + 10 + 4,
            calls: 0,
        };
        let mut w = PcapWriter::new(disk, 65535, 1 << 20).unwrap();
        assert!(w.record(0, &[0x45; 10]).unwrap());
        assert!(w.record(0, &[0x45; 10]).is_err(), "the disk filled");
        assert!(w.failed());
        let calls = w.out.calls;
        for _ in 0..100 {
            assert!(!w.record(0, &[0x45; 10]).unwrap(), "no second error");
        }
        w.flush().unwrap();
        assert_eq!(w.out.calls, calls, "nothing is written after the error");
        assert_eq!(w.dropped(), 101);
    }
}
