//! Hostile connections for the slow-client benchmark: from another loopback
//! address (another peer, as a real attacker is), connections that declare
//! a megabyte of body with fresh-looking signature headers and send one
//! byte, and connections that send nothing at all. Each is reopened as
//! soon as the server closes it, so the pressure lasts the whole run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The attacker's address: loopback, but not the load generator's.
const ATTACKER: [u8; 4] = [127, 0, 0, 2];

/// Attacking connections, held until [`Attack::stop`].
pub(super) struct Attack {
    stop: Arc<AtomicBool>,
    /// Connections opened, and of those, closed by the server.
    opened: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Attack {
    pub(super) fn start(base_url: &str, slow: usize, idle: usize) -> anyhow::Result<Self> {
        let server: SocketAddr = base_url.parse()?;
        let (stop, opened, closed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let tasks = (0..slow + idle)
            .map(|i| {
                let (stop, opened, closed) = (stop.clone(), opened.clone(), closed.clone());
                let sends_a_head = i < slow;
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut stream) = connect(server).await else {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        };
                        opened.fetch_add(1, Ordering::Relaxed);
                        if sends_a_head && stream.write_all(slow_head().as_bytes()).await.is_err() {
                            continue;
                        }
                        // Hold it until the server closes it, or the run ends.
                        let mut buffer = [0_u8; 1024];
                        loop {
                            tokio::select! {
                                read = stream.read(&mut buffer) => match read {
                                    Ok(0) | Err(_) => {
                                        closed.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                    Ok(_) => {}
                                },
                                () = tokio::time::sleep(Duration::from_millis(200)) => {
                                    if stop.load(Ordering::Relaxed) {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Ok(Self {
            stop,
            opened,
            closed,
            tasks,
        })
    }

    /// Ends the attack; returns the connections opened and those the server closed.
    pub(super) async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        (self.opened.load(Ordering::Relaxed), self.closed.load(Ordering::Relaxed))
    }
}

async fn connect(server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((ATTACKER, 0)))?;
    socket.connect(server).await
}

fn slow_head() -> String {
    format!(
        "POST /v1/passport/events HTTP/1.1\r\nhost: coliseum\r\ncontent-type: application/json\r\n\
         content-length: 1048576\r\nwebhook-id: msg_slow\r\nwebhook-timestamp: {}\r\n\
         webhook-signature: v1,AAAA\r\n\r\n{{",
        time::OffsetDateTime::now_utc().unix_timestamp()
    )
}
