//! A throwaway ActiveMQ Classic (Debian `activemq`) with one `stomp+nio`
//! connector, for the broker benchmark.
//!
//! Owns one broker's whole life: a free loopback port for STOMP, an
//! `activemq.xml` that enables nothing else (no OpenWire, no JMX, no
//! persistence: messages live in memory, as in stompkit), every file under
//! `<target>/activemq-<pid>-<n>/`, the JVM started directly (not through
//! `/usr/bin/activemq`, which wants the `activemq` user and `/var/lib`), waiting
//! until STOMP answers a CONNECT with CONNECTED, and stopping the JVM and
//! removing its directory when the [`ActiveMq`] is dropped.
//!
//! It does not install anything: [`ActiveMq::start`] returns `Ok(None)` when the
//! package is missing (see `bench_broker`'s `--with-peers`).

use anyhow::{Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use xtask::process::{stomp_connect, wait_ready};

/// Where Debian installs ActiveMQ.
const HOME: &str = "/usr/share/activemq";
/// How long the JVM may take from spawn to answering CONNECT.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// JVM heap: Debian's default for the service (`/etc/default/activemq`).
const HEAP: &str = "512M";

/// Brokers started by this process so far (makes directories unique).
static STARTED: AtomicU32 = AtomicU32::new(0);

/// A running ActiveMQ; stopped and its directory removed when dropped.
pub struct ActiveMq {
    /// STOMP over TCP (`stomp+nio`).
    pub stomp: SocketAddr,
    /// All of the broker's files.
    pub dir: PathBuf,
    child: Option<Child>,
}

/// Whether the Debian package is installed.
pub fn installed() -> bool {
    Path::new(HOME).join("bin/activemq.jar").exists()
}

/// `activemq.xml`: one `stomp+nio` connector on `port`, nothing persisted.
fn config_text(port: u16) -> String {
    format!(
        r#"<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="stompkit-bench"
          useJmx="false" persistent="false" dataDirectory="${{activemq.data}}">
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp+nio://127.0.0.1:{port}"/>
    </transportConnectors>
  </broker>
</beans>
"#
    )
}

impl ActiveMq {
    /// Starts a broker with its files under `target_dir/activemq-<pid>-<n>/` and
    /// waits until STOMP answers; `Ok(None)` when ActiveMQ is not installed.
    pub fn start(target_dir: &Path) -> Result<Option<ActiveMq>> {
        if !installed() {
            return Ok(None);
        }
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = target_dir.join(format!("activemq-{}-{n}", std::process::id()));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let mut broker = ActiveMq {
            stomp: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: None,
        };
        broker.spawn()?;
        broker.wait_ready()?;
        println!("activemq: up, stomp+nio on {}", broker.stomp);
        Ok(Some(broker))
    }

    /// The JVM's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.dir);
        let conf = self.dir.join("conf");
        let data = self.dir.join("data");
        let tmp = self.dir.join("tmp");
        for dir in [&conf, &data, &tmp] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let xml = conf.join("activemq.xml");
        std::fs::write(&xml, config_text(self.stomp.port()))?;
        let console = std::fs::File::create(self.dir.join("console.log"))?;
        let define = |name: &str, path: &Path| format!("-D{name}={}", path.display());
        let mut command = Command::new("java");
        command
            .arg(format!("-Xms{HEAP}"))
            .arg(format!("-Xmx{HEAP}"))
            .arg(define("activemq.home", Path::new(HOME)))
            .arg(define("activemq.base", &self.dir))
            .arg(define("activemq.conf", &conf))
            .arg(define("activemq.data", &data))
            .arg(define("java.io.tmpdir", &tmp))
            .args(["-jar", &format!("{HOME}/bin/activemq.jar"), "start"])
            .arg(format!("xbean:file:{}", xml.display()))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .process_group(0);
        println!(
            "activemq: starting the JVM (files in {})",
            self.dir.display()
        );
        self.child = Some(command.spawn().context("could not start java")?);
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let child = self.child.as_mut().context("ActiveMQ was not started")?;
        let stomp = self.stomp;
        wait_ready(child, "ActiveMQ", STARTUP_TIMEOUT, || stomp_connect(stomp))
            .with_context(|| format!("see {}", self.dir.join("console.log").display()))
    }
}

impl Drop for ActiveMq {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_only_a_stomp_nio_connector_and_no_persistence() {
        let text = config_text(4242);
        assert!(text.contains(r#"uri="stomp+nio://127.0.0.1:4242"#));
        assert_eq!(text.matches("<transportConnector ").count(), 1);
        assert!(text.contains(r#"persistent="false""#));
        // `${activemq.data}` survives format!'s escaping for Spring to expand.
        assert!(text.contains(r#"dataDirectory="${activemq.data}""#));
    }
}
