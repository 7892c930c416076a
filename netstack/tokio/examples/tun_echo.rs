//! A tokio echo server on the smrnet stack, on a TUN device of its own:
//! `sudo ./target/release/examples/tun_echo`, then `nc 198.18.99.2 7`
//! (the kernel's side is 198.18.99.1/24). Stops after 10 minutes or Ctrl-C.
use netstack::StackConfig;
use smrnet_tokio::{Driver, Frames, TcpListener};
use std::sync::atomic::AtomicBool;
use tokio::io::AsyncWriteExt;

struct Tun(tun_rs::SyncDevice);
impl std::os::fd::AsFd for Tun {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}
impl Frames for Tun {
    fn recv_frame(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.recv(buf)
    }
    fn send_frame(&self, f: &[u8]) -> std::io::Result<()> {
        self.0.send(f).map(drop)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let dev = tun_rs::DeviceBuilder::new()
        .name("smrtok0")
        .ipv4("198.18.99.1", 24, None)
        .enable(true)
        .build_sync()?;
    dev.set_nonblocking(true)?;
    let (net, driver) = Driver::new(StackConfig::new(vec!["198.18.99.2".parse().unwrap()]))?;
    static STOP: AtomicBool = AtomicBool::new(false);
    std::thread::spawn(move || driver.run(0, &Tun(dev), &STOP));
    let listener = TcpListener::bind(&net, "0.0.0.0:7".parse().unwrap())?;
    let serve = async {
        loop {
            let Ok((s, _peer)) = listener.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(s);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(600), serve).await;
    Ok(())
}
