//! The HTTP side of imaging, for the agent on a seat: `GET /imaging/task?mac=M` (what to
//! do), `PUT /imaging/capture/TOKEN/FILE` (one file of a capture, streamed),
//! `POST /imaging/capture/TOKEN/finish` (the manifest) and
//! `POST /imaging/report?mac=M&phase=P` (progress and results, the body in words).
//! The HTTP server mounts these routes beside the boot files; the hub decides.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::Deserialize;

use super::capture::Refusal;
use super::hub::{ImagingError, ImagingHub};
use crate::events::SeatPhase;
use crate::http::Peer;
use crate::mac::MacAddr;

/// A manifest or a report is text of a few kilobytes; more is not one.
const MAX_TEXT: usize = 256 * 1024;

pub fn routes(hub: Arc<ImagingHub>) -> Router {
    Router::new()
        .route("/imaging/task", get(task))
        .route("/imaging/boot.ipxe", get(boot))
        .route("/imaging/capture/{token}/finish", post(finish))
        .route("/imaging/capture/{token}/{file}", put(upload))
        .route("/imaging/report", post(report))
        .with_state(hub)
}

type Answer = (StatusCode, String);

fn seat(peer: &ConnectInfo<Peer>) -> Result<Ipv4Addr, Answer> {
    match peer.0.0.ip() {
        IpAddr::V4(ip) => Ok(ip),
        IpAddr::V6(ip) => ip.to_ipv4_mapped().ok_or((StatusCode::BAD_REQUEST, "imaging works over IPv4 only\n".into())),
    }
}

fn refused(err: &ImagingError) -> Answer {
    let status = match err {
        ImagingError::Refused(Refusal::NoSession) => StatusCode::NOT_FOUND,
        ImagingError::Refused(Refusal::Busy(_) | Refusal::Twice(_)) | ImagingError::Exists { .. } => {
            StatusCode::CONFLICT
        }
        ImagingError::Refused(Refusal::Mismatch(_)) | ImagingError::Manifest(_) | ImagingError::BadName(_) => {
            StatusCode::BAD_REQUEST
        }
        ImagingError::Refused(_) | ImagingError::AlreadyArmed { .. } => StatusCode::FORBIDDEN,
        ImagingError::DiskFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        ImagingError::Write(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, format!("{err}\n"))
}

#[derive(Deserialize)]
struct MacQuery {
    mac: String,
}

fn parse_mac(text: &str) -> Result<MacAddr, Answer> {
    text.parse().map_err(|err: String| (StatusCode::BAD_REQUEST, format!("{err}\n")))
}

async fn task(
    State(hub): State<Arc<ImagingHub>>,
    peer: ConnectInfo<Peer>,
    Query(query): Query<MacQuery>,
) -> Result<String, Answer> {
    let mac = parse_mac(&query.mac)?;
    let from = seat(&peer)?;
    Ok(format!("{}\n", hub.task(mac, from)))
}

/// The iPXE script a seat in imaging boots: the agent, or its own disk.
async fn boot(State(hub): State<Arc<ImagingHub>>, Query(query): Query<MacQuery>) -> Result<String, Answer> {
    let mac = parse_mac(&query.mac)?;
    Ok(hub.seat_boot(mac).script())
}

async fn upload(
    State(hub): State<Arc<ImagingHub>>,
    peer: ConnectInfo<Peer>,
    Path((token, file)): Path<(String, String)>,
    body: Body,
) -> Result<String, Answer> {
    let from = seat(&peer)?;
    let (chunks, mut next) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
    // The file is written on the blocking pool while the body arrives here.
    let writer =
        tokio::task::spawn_blocking(move || hub.receive_file(&token, from, &file, &mut || next.blocking_recv()));
    let mut body = std::pin::pin!(body);
    loop {
        let frame = std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await;
        let chunk = match frame {
            None => break,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => Ok(data),
                Err(_) => continue, // trailers
            },
            Some(Err(err)) => Err(io::Error::new(io::ErrorKind::ConnectionAborted, err.to_string())),
        };
        let failed = chunk.is_err();
        if chunks.send(chunk).await.is_err() || failed {
            // The writer gave up (refused, disk full), or the seat's connection broke.
            break;
        }
    }
    drop(chunks);
    match writer.await {
        Ok(Ok(received)) => Ok(format!("bytes={} sha256={}\n", received.bytes, received.sha256)),
        Ok(Err(err)) => Err(refused(&err)),
        Err(_) => Err((StatusCode::INTERNAL_SERVER_ERROR, "the writer stopped\n".into())),
    }
}

async fn text_body(body: Body) -> Result<String, Answer> {
    let bytes = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, format!("at most {MAX_TEXT} bytes of text\n")))?;
    String::from_utf8(bytes.to_vec()).map_err(|_| (StatusCode::BAD_REQUEST, "the body is not UTF-8 text\n".into()))
}

async fn finish(
    State(hub): State<Arc<ImagingHub>>,
    peer: ConnectInfo<Peer>,
    Path(token): Path<String>,
    body: Body,
) -> Result<String, Answer> {
    let from = seat(&peer)?;
    let text = text_body(body).await?;
    let finished = tokio::task::spawn_blocking(move || hub.finish_capture(&token, from, &text))
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "the writer stopped\n".to_string()))?;
    match finished {
        Ok(dir) => Ok(format!("saved {}\n", dir.display())),
        Err(err) => Err(refused(&err)),
    }
}

#[derive(Deserialize)]
struct ReportQuery {
    mac: String,
    phase: String,
}

async fn report(
    State(hub): State<Arc<ImagingHub>>,
    peer: ConnectInfo<Peer>,
    Query(query): Query<ReportQuery>,
    body: Body,
) -> Result<String, Answer> {
    let mac = parse_mac(&query.mac)?;
    let from = seat(&peer)?;
    let phase = SeatPhase::parse(&query.phase)
        .ok_or_else(|| (StatusCode::BAD_REQUEST, format!("unknown phase {:?}\n", query.phase)))?;
    let detail = text_body(body).await?;
    // A report is one line of words: keep it one line, and short, for the log and the grid.
    let detail: String = detail.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).take(500).collect();
    hub.report(mac, from, phase, detail);
    Ok("ok\n".into())
}
