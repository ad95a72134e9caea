//! The ClickHouse server that Khiên manages by default: a loopback-only config and a data
//! directory under `DIR/clickhouse/`, started as a detached process, health-checked with
//! `SELECT 1`, stopped with SIGTERM.
//!
//! Layout: `DIR/clickhouse/{config.xml,users.xml,ports.json,server.pid,data/,tmp/,log/}`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::{io_err, write_atomic, Error, Result};

/// Ports of the managed server, chosen once and kept in `ports.json`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Ports {
    pub http: u16,
    pub tcp: u16,
}

/// A managed ClickHouse server rooted at `DIR/clickhouse`.
#[derive(Debug, Clone)]
pub struct Managed {
    root: PathBuf,
    ports: Ports,
}

/// Two distinct free loopback ports for the server, chosen below the kernel's ephemeral
/// range: a port from `bind(0)` lies in that range, where every outgoing connection on
/// the machine (ours, other tests' servers and clients) takes its local port, so it could
/// be taken between choosing it and the server binding it (the server then exits with
/// "Address already in use"). Both are held while choosing, so they differ.
fn free_ports() -> Result<Ports> {
    let ephemeral_lo = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    const FLOOR: u16 = 10_000;
    let mut held = Vec::new();
    if ephemeral_lo > FLOOR + 1_000 {
        let span = u64::from(ephemeral_lo - FLOOR);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 20);
        for i in 0..span {
            if held.len() == 2 {
                break;
            }
            let port = FLOOR + ((seed.wrapping_add(i.wrapping_mul(7_919))) % span) as u16;
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                held.push(l);
            }
        }
    }
    // No room below the ephemeral range: let the kernel choose.
    while held.len() < 2 {
        held.push(std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err("127.0.0.1:0"))?);
    }
    let port = |l: &std::net::TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(io_err("127.0.0.1"))
    };
    Ok(Ports {
        http: port(&held[0])?,
        tcp: port(&held[1])?,
    })
}

/// The `clickhouse-server` executable: `$KHIEN_CLICKHOUSE_SERVER`, else from `PATH`, else
/// Debian's `/usr/sbin/clickhouse-server`.
fn server_exe() -> PathBuf {
    if let Some(p) = std::env::var_os("KHIEN_CLICKHOUSE_SERVER") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("clickhouse-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/clickhouse-server"))
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Sends SIGTERM to `pid` and waits up to `grace` for it to exit, then SIGKILL. Returns
/// whether the process was running.
pub fn terminate(pid: i32, grace: Duration) -> bool {
    if !alive(pid) {
        return false;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid) {
        tracing::warn!(pid, "process ignored SIGTERM; sending SIGKILL");
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        while alive(pid) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    true
}

pub(crate) fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Managed {
    /// Prepares `data_dir/clickhouse`: directories, ports and config files (idempotent).
    pub fn prepare(data_dir: &Path) -> Result<Managed> {
        let root = data_dir.join("clickhouse");
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        let ports_file = root.join("ports.json");
        let ports = match std::fs::read(&ports_file) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::BadFile {
                path: ports_file.clone(),
                reason: e.to_string(),
            })?,
            Err(_) => {
                let ports = free_ports()?;
                let json = serde_json::to_vec(&ports).unwrap_or_default();
                write_atomic(&ports_file, &json)?;
                ports
            }
        };
        let m = Managed { root, ports };
        m.write_config()?;
        Ok(m)
    }

    fn write_config(&self) -> Result<()> {
        let r = self.root.display();
        let config = format!(
            r#"<?xml version="1.0"?>
<!-- Generated by khien; loopback only. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>{r}/log/clickhouse-server.log</log>
        <errorlog>{r}/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <max_connections>256</max_connections>
    <keep_alive_timeout>10</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>{r}/data/</path>
    <tmp_path>{r}/tmp/</tmp_path>
    <user_files_path>{r}/user_files/</user_files_path>
    <format_schema_path>{r}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
"#,
            http = self.ports.http,
            tcp = self.ports.tcp,
        );
        let users = r#"<?xml version="1.0"?>
<!-- Generated by khien: one passwordless user reachable from loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"#;
        write_atomic(&self.root.join("config.xml"), config.as_bytes())?;
        write_atomic(&self.root.join("users.xml"), users.as_bytes())
    }

    /// HTTP URL of the managed server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// The ports in use.
    pub fn ports(&self) -> Ports {
        self.ports
    }

    fn pid_file(&self) -> PathBuf {
        self.root.join("server.pid")
    }

    /// Pid of the running server, if any.
    pub fn pid(&self) -> Option<i32> {
        read_pid(&self.pid_file()).filter(|&p| alive(p))
    }

    /// Starts the server unless it is already running; returns its pid. The process gets its
    /// own process group, so a signal to the collector (even SIGKILL) leaves it running.
    pub fn start(&self) -> Result<i32> {
        if let Some(pid) = self.pid() {
            return Ok(pid);
        }
        let log = self.root.join("log/stdout.log");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io_err(&log))?;
        let err = out.try_clone().map_err(io_err(&log))?;
        let exe = server_exe();
        let mut cmd = Command::new(&exe);
        cmd.arg(format!(
            "--config-file={}",
            self.root.join("config.xml").display()
        ))
        .current_dir(&self.root)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Managed(format!("cannot run {}: {e}", exe.display())))?;
        let pid = i32::try_from(child.id()).map_err(|e| Error::Managed(e.to_string()))?;
        write_atomic(&self.pid_file(), pid.to_string().as_bytes())?;
        // Reap the child when it exits so that it never lingers as a zombie.
        std::thread::spawn(move || {
            let status = child.wait();
            tracing::info!(pid, ?status, "managed ClickHouse exited");
        });
        tracing::info!(
            pid,
            http_port = self.ports.http,
            "started managed ClickHouse"
        );
        Ok(pid)
    }

    /// Waits until `SELECT 1` answers, up to `timeout`.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let client = client_for(&self.url());
        let deadline = Instant::now() + timeout;
        loop {
            match client.query_raw("SELECT 1").fetch_one::<u8>().await {
                Ok(1) => return Ok(()),
                Ok(v) => return Err(Error::Managed(format!("SELECT 1 returned {v}"))),
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::Managed(format!(
                        "not healthy after {timeout:?}: {e} (see {})",
                        self.root.join("log").display()
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stops the server (SIGTERM, SIGKILL after a minute). Returns whether it was running.
    /// The pid file goes first, so a watching collector sees a stop, not a crash.
    pub fn stop(&self) -> bool {
        let pid = self.pid();
        let _ = std::fs::remove_file(self.pid_file());
        pid.is_some_and(|pid| terminate(pid, Duration::from_secs(60)))
    }

    /// The pid of a server that exited without being stopped: its pid file is still there
    /// but the process is gone.
    pub fn crashed(&self) -> Option<i32> {
        read_pid(&self.pid_file()).filter(|&p| !alive(p))
    }
}

/// A `clickhouse` client for `url` with the settings every statement of ours needs.
pub fn client_for(url: &str) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(url)
        .with_validation(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let lo: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        for _ in 0..20 {
            let p = free_ports().expect("ports");
            assert_ne!(p.http, p.tcp);
            for port in [p.http, p.tcp] {
                assert!(lo <= 11_000 || (10_000..lo).contains(&port), "{port}");
                drop(std::net::TcpListener::bind(("127.0.0.1", port)).expect("free"));
            }
        }
    }
}
