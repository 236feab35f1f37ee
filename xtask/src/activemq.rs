//! A throwaway ActiveMQ Classic (Debian `activemq`) with one `stomp+nio`
//! connector, for the broker benchmark.
//!
//! Owns one broker's whole life: a free loopback port for STOMP, an
//! `activemq.xml` that enables nothing else (no OpenWire, no JMX) and, by
//! [`Store`], either no persistence (messages live in memory, as in stompkit's
//! in-memory rows) or KahaDB with its store and temp limits raised for a
//! million stored messages; every file under `<target>/activemq-<pid>-<n>/`,
//! the JVM started directly (not through `/usr/bin/activemq`, which wants the
//! `activemq` user and `/var/lib`), waiting until STOMP answers a CONNECT with
//! CONNECTED, and stopping the JVM and removing its directory when the
//! [`ActiveMq`] is dropped. For crash tests it can also kill the JVM at once
//! ([`ActiveMq::kill`]) and start it again on the same port and files
//! ([`ActiveMq::respawn`]).
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

/// Warnings and errors to the console (`console.log`); without a configuration
/// log4j drops everything, the reason of a failure too.
const LOG4J: &str = "log4j.rootLogger=WARN, console
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d %-5p %c{1} - %m%n
";

/// Brokers started by this process so far (makes directories unique).
static STARTED: AtomicU32 = AtomicU32::new(0);

/// What the broker keeps on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `persistent="false"`: every message in memory.
    Memory,
    /// KahaDB under the data directory (its journal synced on every write, the
    /// default), with `persistent:true` messages stored; store and temp usage
    /// limits raised so a million 1 KiB messages fit, and the memory limit
    /// lowered to 128 MB: at the default (70% of the 512 MB heap) a queue
    /// without consumers caches messages until the heap runs out
    /// (`Java heap space`, then `STORE COMMIT FAILED`) after about 300,000.
    KahaDb,
}

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

/// `activemq.xml`: one `stomp+nio` connector on `port`; nothing persisted, or
/// KahaDB; files under `data` (spelled out: without a placeholder configurer
/// bean, Spring does not expand `${activemq.data}`).
fn config_text(port: u16, store: Store, data: &Path) -> String {
    let data = data.display();
    let (persistent, storage) = match store {
        Store::Memory => ("false", String::new()),
        Store::KahaDb => (
            "true",
            format!(
                r#"
    <persistenceAdapter>
      <kahaDB directory="{data}/kahadb"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="128 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="32 gb"/></storeUsage>
        <tempUsage><tempUsage limit="8 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>"#
            ),
        ),
    };
    format!(
        r#"<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="stompkit-bench"
          useJmx="false" persistent="{persistent}" dataDirectory="{data}">{storage}
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp+nio://127.0.0.1:{port}"/>
    </transportConnectors>
  </broker>
</beans>
"#
    )
}

impl ActiveMq {
    /// Starts a broker with `store` and its files under
    /// `target_dir/activemq-<pid>-<n>/`, and waits until STOMP answers;
    /// `Ok(None)` when ActiveMQ is not installed.
    pub fn start(target_dir: &Path, store: Store) -> Result<Option<ActiveMq>> {
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
        broker.write_files(store)?;
        broker.launch()?;
        broker.wait_ready()?;
        println!("activemq: up, stomp+nio on {}", broker.stomp);
        Ok(Some(broker))
    }

    /// The JVM's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the JVM at once (SIGKILL), as a crash would; its files stay, for
    /// [`respawn`](Self::respawn).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the JVM again on the same port and files (after
    /// [`kill`](Self::kill)); returns once it is spawned, not when it is ready.
    pub fn respawn(&mut self) -> Result<()> {
        self.kill();
        self.launch()
    }

    /// A fresh directory with the configuration.
    fn write_files(&self, store: Store) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.dir);
        for dir in ["conf", "data", "tmp"].map(|d| self.dir.join(d)) {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let xml = self.dir.join("conf/activemq.xml");
        let data = self.dir.join("data");
        std::fs::write(&xml, config_text(self.stomp.port(), store, &data))
            .with_context(|| format!("writing {}", xml.display()))?;
        let log4j = self.dir.join("conf/log4j.properties");
        std::fs::write(&log4j, LOG4J).with_context(|| format!("writing {}", log4j.display()))
    }

    fn launch(&mut self) -> Result<()> {
        let conf = self.dir.join("conf");
        let data = self.dir.join("data");
        let tmp = self.dir.join("tmp");
        let xml = conf.join("activemq.xml");
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("console.log"))?;
        let define = |name: &str, path: &Path| format!("-D{name}={}", path.display());
        let mut command = Command::new("java");
        command
            .arg(format!("-Xms{HEAP}"))
            .arg(format!("-Xmx{HEAP}"))
            .arg(format!(
                "-Dlog4j.configuration=file:{}",
                conf.join("log4j.properties").display()
            ))
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
        let text = config_text(4242, Store::Memory, Path::new("/t/data"));
        assert!(text.contains(r#"uri="stomp+nio://127.0.0.1:4242"#));
        assert_eq!(text.matches("<transportConnector ").count(), 1);
        assert!(text.contains(r#"persistent="false""#));
        assert!(!text.contains("kahaDB"));
        assert!(text.contains(r#"dataDirectory="/t/data""#));
        assert!(!text.contains("${"), "nothing for Spring to expand");
    }

    #[test]
    fn the_durable_config_uses_kahadb_with_room_for_a_million_messages() {
        let text = config_text(4242, Store::KahaDb, Path::new("/t/data"));
        assert!(text.contains(r#"persistent="true""#));
        assert!(text.contains(r#"<kahaDB directory="/t/data/kahadb"/>"#));
        assert!(text.contains(r#"<storeUsage limit="32 gb"/>"#));
        assert!(text.contains(r#"<memoryUsage limit="128 mb"/>"#));
        assert_eq!(text.matches("<transportConnector ").count(), 1);
    }
}
