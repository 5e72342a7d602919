//! A bqemulator of a test's own (persistent, so its tables survive a restart on the same
//! ports), for tests that kill BigQuery or start the service while it is down.

use super::PROJECT;
use std::time::{Duration, Instant};

/// A free port for the private bqemulator, which must come back on the same ports after a kill.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A bqemulator of this test's own, so killing it disturbs no other test.
pub struct PrivateBigQuery {
    child: Option<std::process::Child>,
    rest: u16,
    grpc: u16,
    data_dir: std::path::PathBuf,
}

impl PrivateBigQuery {
    pub async fn start(data_dir: &std::path::Path) -> Self {
        let mut bq = PrivateBigQuery {
            child: None,
            rest: free_port(),
            grpc: free_port(),
            data_dir: data_dir.to_path_buf(),
        };
        bq.spawn().await;
        bq
    }

    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc)
    }

    async fn spawn(&mut self) {
        let python = std::env::var("MESH_BQEMULATOR_PYTHON")
            .expect("MESH_BQEMULATOR_PYTHON is not set: run the tests with scripts/test.sh");
        let launcher = std::env::var("MESH_BQEMULATOR_LAUNCHER")
            .expect("MESH_BQEMULATOR_LAUNCHER is not set: run the tests with scripts/test.sh");
        let log = std::fs::File::create(self.data_dir.join("bqemulator.log")).unwrap();
        let child = std::process::Command::new(python)
            .arg(launcher)
            .args([
                "start",
                "--rest-host",
                "127.0.0.1",
                "--grpc-host",
                "127.0.0.1",
            ])
            .args(["--rest-port", &self.rest.to_string()])
            .args(["--grpc-port", &self.grpc.to_string()])
            .args(["--project", PROJECT, "--persistent", "--data-dir"])
            .arg(&self.data_dir)
            .env("BQEMU_ENABLE_FORMAT_EXTENSIONS", "false")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start bqemulator");
        self.child = Some(child);
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            let rest_up = client
                .get(format!("{}/readyz", self.rest_url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            let grpc_up = std::net::TcpStream::connect(("127.0.0.1", self.grpc)).is_ok();
            if rest_up && grpc_up {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "bqemulator did not start:\n{}",
                std::fs::read_to_string(self.data_dir.join("bqemulator.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }
}

impl Drop for PrivateBigQuery {
    fn drop(&mut self) {
        self.kill();
    }
}
