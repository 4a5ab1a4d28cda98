//! `meterwatch healthcheck`: one GET of the daemon's `/healthz`, for health checks where the
//! image has no shell and no curl (distroless): the ECS container health check, a Kubernetes
//! exec probe.

use anyhow::Context;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::process::ExitCode;
use std::time::Duration;

/// How long the daemon has to answer: an orchestrator's check times out soon after.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Asks a running daemon whether it is alive: exit 0 when the URL answers 200 within 2 s,
/// 1 otherwise (refused, timed out, another status).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's liveness endpoint (plain HTTP).
    #[arg(long, default_value = "http://127.0.0.1:8080/healthz", value_parser = http_url)]
    url: Uri,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(match runtime.block_on(check(&args.url, TIMEOUT)) {
        Ok(()) => {
            println!("ok: {} answered 200", args.url);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("unhealthy: {error:#}");
            ExitCode::from(1)
        }
    })
}

/// An `http://` URL with a host.
fn http_url(text: &str) -> Result<Uri, String> {
    let url: Uri = text.parse().map_err(|error| format!("{error}"))?;
    match (url.scheme_str(), url.host()) {
        (Some("http"), Some(_)) => Ok(url),
        _ => {
            Err("expected an http:// URL with a host, such as http://127.0.0.1:8080/healthz".into())
        }
    }
}

/// Ok when `url` answers 200 within `timeout`.
async fn check(url: &Uri, timeout: Duration) -> anyhow::Result<()> {
    let status = tokio::time::timeout(timeout, status(url))
        .await
        .map_err(|_| anyhow::anyhow!("{url} did not answer within {timeout:?}"))??;
    anyhow::ensure!(status == StatusCode::OK, "{url} answered {status}");
    Ok(())
}

/// The status `url` answers a GET with.
async fn status(url: &Uri) -> anyhow::Result<StatusCode> {
    let authority = url.authority().context("the URL has no host")?;
    // `[::1]` in a URL, `::1` to connect to.
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("starting HTTP")?;
    // The connection does the I/O; it ends when the response is read and `sender` dropped.
    tokio::spawn(connection);
    let path = url.path_and_query().map_or("/", |path| path.as_str());
    let request = Request::get(path)
        .header(hyper::header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("GET {url}"))?;
    Ok(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{self, Health};
    use crate::telemetry::Metrics;
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    fn url(addr: std::net::SocketAddr, path: &str) -> Uri {
        http_url(&format!("http://{addr}{path}")).expect("a valid URL")
    }

    #[tokio::test]
    async fn passes_against_a_live_daemon_and_fails_once_it_is_gone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = CancellationToken::new();
        let server = tokio::spawn(http::serve(
            listener,
            Arc::new(Health::remote(Duration::from_secs(60))),
            Arc::new(Metrics::default()),
            stop.clone(),
        ));
        check(&url(addr, "/healthz"), TIMEOUT)
            .await
            .expect("a live daemon is healthy");
        // Not ready yet (no rules, no queue): 503 is not 200.
        let error = check(&url(addr, "/readyz"), TIMEOUT)
            .await
            .expect_err("503");
        assert!(error.to_string().contains("503"), "{error:#}");
        stop.cancel();
        server.await.expect("joins").expect("serves");
        let error = check(&url(addr, "/healthz"), TIMEOUT)
            .await
            .expect_err("nothing listens");
        assert!(format!("{error:#}").contains("connecting to"), "{error:#}");
    }

    #[tokio::test(start_paused = true)]
    async fn fails_when_the_daemon_does_not_answer_in_time() {
        // Accepts connections (the backlog) but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let error = check(&url(addr, "/healthz"), TIMEOUT)
            .await
            .expect_err("no answer");
        assert!(error.to_string().contains("did not answer"), "{error:#}");
        drop(listener);
    }

    #[test]
    fn only_plain_http_urls_are_accepted() {
        assert!(http_url("http://127.0.0.1:8080/healthz").is_ok());
        assert!(http_url("http://[::1]:8080/healthz").is_ok());
        assert!(http_url("https://127.0.0.1/healthz").is_err());
        assert!(http_url("/healthz").is_err());
    }
}
