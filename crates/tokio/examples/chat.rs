//! A terminal chat over STOMP: every line typed is sent to a topic, every
//! message on the topic is printed.
//!
//! ```text
//! cargo run -p stompkit-tokio --example chat -- stomp://127.0.0.1:61613 /topic/chat [login passcode]
//! ```
//! `stomp+ssl://` addresses trust the CA file in `STOMP_CA_FILE`, or else the
//! system's root certificates (builds with the `tls` feature, the default).

use futures_util::StreamExt;
use stompkit_tokio::{AckMode, Client, ClientConfig, Frame, Reconnect};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(topic)) = (args.next(), args.next()) else {
        eprintln!("usage: chat stomp://host:port /topic/name [login passcode]");
        std::process::exit(2);
    };
    let address = stompkit_tokio::Address::parse(&url)?;
    let mut config = ClientConfig::new(address.host.clone()).reconnect(Reconnect::default());
    if let (Some(login), Some(passcode)) = (args.next(), args.next()) {
        config = config.login(login, passcode);
    }
    // None: the system's root certificates (or, in a build without TLS, a
    // `stomp+ssl://` address is refused).
    #[cfg(feature = "tls")]
    let tls_config = match std::env::var_os("STOMP_CA_FILE") {
        Some(path) => Some(stompkit_tokio::tls::client_config_from_ca_file(path)?),
        None => None,
    };
    #[cfg(not(feature = "tls"))]
    let tls_config = None;
    let client = Client::connect_url(&url, config, tls_config).await?;
    eprintln!("connected, STOMP {}", client.version());

    let mut messages = client.subscribe(&topic, AckMode::Auto).await?;
    let printer = tokio::spawn(async move {
        while let Some(item) = messages.next().await {
            match item {
                Ok(message) => println!("> {}", String::from_utf8_lossy(message.body())),
                Err(e) => eprintln!("! {e}"),
            }
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let frame = Frame::send(&topic)
            .header("content-type", "text/plain;charset=utf-8")
            .with_body(line);
        client.send(frame).await?;
    }
    client.disconnect().await?;
    printer.abort();
    Ok(())
}
