//! A TCP proxy in front of an emulator that a test can cut and restore: cut, it closes every
//! connection and stops listening (clients see connection refused, as when a peer is down);
//! restored, it listens on the same port again. It lets one test take Pub/Sub away from the
//! service under test without stopping the emulator the other tests share.

use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct CutProxy {
    port: u16,
    upstream: String,
    /// The accept loop and every connection's copy task, while the proxy is up.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl CutProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = CutProxy {
            port: listener.local_addr().unwrap().port(),
            upstream: upstream.trim_start_matches("http://").to_string(),
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    /// `127.0.0.1:<port>`, as the emulator variables write an address.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let copy = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(copy);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes every connection and the listener.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
