//! `otlp-print [ADDR]`: an OTLP/HTTP collector on loopback (default
//! 127.0.0.1:4318) that prints every span and log record airlock exports,
//! one per line. For trying `[telemetry] otlp` out without a collector.

use airlock_tests::otlp::{attributes_line, collect, decode_logs, decode_spans};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4318".into());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let at = listener.local_addr()?;
    if !at.ip().is_loopback() {
        return Err(format!(
            "{at} is not a loopback address: this collector listens on loopback only"
        )
        .into());
    }
    eprintln!("otlp-print: collecting at http://{at} (set [telemetry] otlp = \"http://{at}\")");
    collect(listener, |(path, body)| match path.as_str() {
        "/v1/traces" => {
            for span in decode_spans(body) {
                let millis = span
                    .end_time_unix_nano
                    .saturating_sub(span.start_time_unix_nano) as f64
                    / 1e6;
                let indent = if span.parent_span_id.is_empty() {
                    ""
                } else {
                    "  "
                };
                println!(
                    "{indent}span {} trace={} {millis:.2}ms {}",
                    span.name,
                    hex(&span.trace_id),
                    attributes_line(&span.attributes)
                );
            }
        }
        "/v1/logs" => {
            for record in decode_logs(body) {
                println!(
                    "log  {} trace={} {}",
                    record.event_name,
                    hex(&record.trace_id),
                    attributes_line(&record.attributes)
                );
            }
        }
        other => eprintln!("otlp-print: ignored an export to {other}"),
    })
    .await;
    std::future::pending::<()>().await;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
