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
        .route(&format!("/{}", crate::ipxe::IMAGING_SCRIPT), get(boot))
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
        ImagingError::Refused(_) | ImagingError::AlreadyArmed { .. } | ImagingError::NameInUse(_) => {
            StatusCode::FORBIDDEN
        }
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
    // The body's end is said explicitly: a channel that closes without it is a
    // connection that broke (hyper drops this future), never a whole file.
    let (chunks, mut next) = tokio::sync::mpsc::channel::<Option<io::Result<Bytes>>>(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut pull = || match next.blocking_recv() {
            Some(Some(chunk)) => Some(chunk),
            Some(None) => None,
            None => Some(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the seat's connection broke"))),
        };
        hub.receive_file(&token, from, &file, &mut pull)
    });
    let mut body = std::pin::pin!(body);
    loop {
        let frame = std::future::poll_fn(|cx| http_body::Body::poll_frame(body.as_mut(), cx)).await;
        let chunk = match frame {
            None => {
                let _ = chunks.send(None).await;
                break;
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => Ok(data),
                Err(_) => continue, // trailers
            },
            Some(Err(err)) => Err(io::Error::new(io::ErrorKind::ConnectionAborted, err.to_string())),
        };
        let failed = chunk.is_err();
        if chunks.send(Some(chunk)).await.is_err() || failed {
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

#[cfg(test)]
mod tests {
    //! The routes over real HTTP on loopback, with seats at 127.0.0.1 and 127.0.0.2.

    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::events::EventSink;
    use crate::http::{HttpSettings, start};
    use crate::imaging::hub::Task;
    use crate::served::Served;

    const MAC: &str = "52:54:00:00:00:01";

    /// One request from `from` (a loopback address); the status and the body.
    async fn request(server: SocketAddr, from: [u8; 4], head: &str, body: &[u8]) -> (u16, String) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        let mut stream = socket.connect(server).await.unwrap();
        let text = format!("{head} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        stream.write_all(text.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let status = answer.get(9..12).and_then(|code| code.parse().ok()).unwrap_or(0);
        let body = answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn a_capture_arrives_only_from_its_seat_and_becomes_an_image() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        let hub = ImagingHub::new(dir.path().join("images"), EventSink::new());
        let settings = HttpSettings {
            bind: "127.0.0.1:0".parse().unwrap(),
            root: dir.path().join("root"),
            interface: None,
            routes: Some(routes(Arc::clone(&hub))),
        };
        let service = start(settings, Served::default(), EventSink::new()).await.unwrap();
        let server = service.local_addr();
        let seat = [127, 0, 0, 1];
        let other = [127, 0, 0, 2];

        assert_eq!(request(server, seat, &format!("GET /imaging/task?mac={MAC}"), b"").await, (200, "none\n".into()));
        let (status, _) = request(server, seat, "PUT /imaging/capture/nosuch/p1", b"abc").await;
        assert_eq!(status, 404, "no session");

        hub.arm_capture(MAC.parse().unwrap(), "lab").unwrap();
        let (status, task) = request(server, seat, &format!("GET /imaging/task?mac={MAC}"), b"").await;
        assert_eq!(status, 200);
        let Ok(Task::Capture { token, .. }) = parse_task(&task) else { panic!("{task}") };
        let (status, body) = request(server, other, &format!("PUT /imaging/capture/{token}/p1"), b"abc").await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("belongs to the seat at 127.0.0.1"), "{body}");
        let (status, body) = request(server, seat, &format!("PUT /imaging/capture/{token}/..%2Fescape"), b"x").await;
        assert_eq!(status, 403, "{body}");

        let (status, table) = request(server, seat, &format!("PUT /imaging/capture/{token}/table.sfdisk"), b"t").await;
        assert_eq!(status, 200, "{table}");
        let (status, part) = request(server, seat, &format!("PUT /imaging/capture/{token}/p1"), b"abc").await;
        assert_eq!(status, 200, "{part}");
        let field = |answer: &str, name: &str| -> String {
            answer.split_whitespace().find_map(|word| word.strip_prefix(name)).unwrap_or_default().to_owned()
        };
        let manifest = format!(
            "format = 1\nname = \"\"\nid = \"\"\ncreated = 0\ndisk_bytes = 1\n[table]\nfile = \"table.sfdisk\"\nbytes = 1\nsha256 = \"{}\"\n[[partitions]]\nnumber = 1\nfilesystem = \"ext4\"\nmethod = \"raw\"\npartition_bytes = 3\nfile = \"p1\"\nbytes = 3\nsha256 = \"{}\"\n",
            field(&table, "sha256="),
            field(&part, "sha256=")
        );
        let (status, body) =
            request(server, seat, &format!("POST /imaging/capture/{token}/finish"), manifest.as_bytes()).await;
        assert_eq!(status, 200, "{body}");
        let image = crate::imaging::image::Image::open(&dir.path().join("images"), "lab").unwrap();
        assert_eq!(image.manifest.partitions[0].part.bytes, 3);

        let report = format!("POST /imaging/report?mac={MAC}&phase=bogus");
        assert_eq!(request(server, seat, &report, b"x").await.0, 400);
        service.stop().await;
    }

    fn parse_task(line: &str) -> Result<Task, ()> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["capture", token, name] => Ok(Task::Capture { token: (*token).into(), name: (*name).into() }),
            _ => Err(()),
        }
    }
}
