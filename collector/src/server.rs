//! The ingest endpoint: `POST /v1/events` over HTTPS (rustls).
//!
//! Protocol:
//! - `Authorization: Bearer <token>` names the sensor, hence the tenant (never the body).
//! - Body: NDJSON EVE lines; `Content-Encoding: gzip` or `zstd` or none. Limits: compressed
//!   body [`ServerConfig::max_body`], decoded body [`ServerConfig::max_decoded`].
//! - Optional `X-Khien-Stream: <id>` and `X-Khien-Offset: <byte offset of the body's first
//!   line in that stream>`: lines at offsets already stored are acknowledged as duplicates.
//! - Answer 200 with JSON `{"accepted","duplicates","rejected","errors":[{"line","reason"}]}`
//!   once the accepted lines are fsynced in the spool; malformed lines are reported by line
//!   number and the good lines of the batch are kept.
//! - 401 for a missing, unknown or revoked token; 413 for a body over the limits; 429 with
//!   `Retry-After` when too many requests are in flight; 503 with `Retry-After` when the
//!   spool is full or cannot be written.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::enrich::Enrichment;
use crate::parsed::{self, DecodeError, Encoding, Origin, Parsed};
use crate::sensors::{token_hash, Registry, Sensor};
use crate::spool::{Batch, Spool};
use crate::writer::WriterStats;

/// Ingest limits and settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// Largest request body as sent (compressed).
    pub max_body: usize,
    /// Largest request body after decompression.
    pub max_decoded: usize,
    /// Requests processed at once; more get 429.
    pub max_inflight: usize,
    /// Errors listed per response (all are counted).
    pub max_listed_errors: usize,
}

impl ServerConfig {
    /// Defaults for the data directory `dir`.
    pub fn for_dir(dir: &Path) -> ServerConfig {
        ServerConfig {
            data_dir: dir.to_owned(),
            max_body: 32 << 20,
            max_decoded: 256 << 20,
            max_inflight: 8,
            max_listed_errors: 1000,
        }
    }
}

/// Ingest counters.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub requests: AtomicU64,
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub unauthorized: AtomicU64,
    pub overloaded: AtomicU64,
    /// Ordered requests that waited to be appended after earlier batches of their stream.
    pub ordered_waits: AtomicU64,
    /// Ordered requests refused (409) because the earlier batches never came.
    pub out_of_order: AtomicU64,
}

struct SensorCache {
    mtime: Option<SystemTime>,
    by_hash: HashMap<String, Sensor>,
}

/// Shared state of the ingest service.
pub struct AppState {
    cfg: ServerConfig,
    spool: Arc<Spool>,
    sensors: Mutex<SensorCache>,
    inflight: Arc<Semaphore>,
    pub stats: IngestStats,
    writer: Arc<WriterStats>,
    enrich: Arc<Enrichment>,
}

impl AppState {
    /// New state over `spool`; events are enriched with `enrich` on ingest.
    pub fn new(
        cfg: ServerConfig,
        spool: Arc<Spool>,
        writer: Arc<WriterStats>,
        enrich: Arc<Enrichment>,
    ) -> Arc<AppState> {
        Arc::new(AppState {
            inflight: Arc::new(Semaphore::new(cfg.max_inflight)),
            cfg,
            spool,
            sensors: Mutex::new(SensorCache {
                mtime: None,
                by_hash: HashMap::new(),
            }),
            stats: IngestStats::default(),
            writer,
            enrich,
        })
    }

    /// The sensor owning `token`, re-reading `sensors.json` when it changed (so `sensor add`
    /// and `sensor revoke` take effect without a restart).
    fn sensor(&self, token: &str) -> Option<Sensor> {
        let path = self.cfg.data_dir.join("sensors.json");
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let mut cache = self
            .sensors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.mtime != mtime || mtime.is_none() {
            match Registry::load(&self.cfg.data_dir) {
                Ok(reg) => {
                    cache.by_hash = reg.by_hash();
                    cache.mtime = mtime;
                }
                Err(e) => tracing::error!(error = %e, "cannot read the sensor registry"),
            }
        }
        cache.by_hash.get(&token_hash(token)).cloned()
    }
}

/// The service's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.cfg.max_body;
    Router::new()
        .route("/v1/events", post(ingest))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct LineReject {
    line: usize,
    reason: String,
}

#[derive(Debug, Serialize)]
struct IngestReply {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    errors: Vec<LineReject>,
}

/// A refusal of a whole request, turned into a response at the end.
struct Reject(StatusCode, String, Option<u32>);

impl Reject {
    fn new(status: StatusCode, msg: &str, retry_after: Option<u32>) -> Reject {
        Reject(status, msg.to_owned(), retry_after)
    }

    fn into_response(self) -> Response {
        error(self.0, &self.1, self.2)
    }
}

fn error(status: StatusCode, msg: &str, retry_after: Option<u32>) -> Response {
    let mut r = (status, axum::Json(serde_json::json!({ "error": msg }))).into_response();
    if let Some(s) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

async fn ingest(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    st.stats.requests.fetch_add(1, Relaxed);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        st.stats.unauthorized.fetch_add(1, Relaxed);
        return error(StatusCode::UNAUTHORIZED, "missing bearer token", None);
    };
    let Some(sensor) = st.sensor(token) else {
        st.stats.unauthorized.fetch_add(1, Relaxed);
        return error(StatusCode::UNAUTHORIZED, "unknown or revoked token", None);
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    let Some(encoding) = Encoding::from_header(encoding) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Content-Encoding `{encoding}` is not supported (use gzip or zstd)"),
            None,
        );
    };
    let stream = headers
        .get("x-khien-stream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if stream.len() > 512 {
        return error(
            StatusCode::BAD_REQUEST,
            "X-Khien-Stream is over 512 bytes",
            None,
        );
    }
    let base = match headers
        .get("x-khien-offset")
        .map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()))
    {
        None => 0,
        Some(Some(o)) => o,
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "X-Khien-Offset is not a number",
                None,
            )
        }
    };
    // The shipper has earlier batches of this stream on their way: this one waits for them
    // (before taking a permit, so waiting requests never crowd out the ones they wait for).
    if !stream.is_empty() && headers.contains_key("x-khien-ordered") {
        if st.spool.stream_next(&sensor.name, &stream).unwrap_or(0) < base {
            st.stats.ordered_waits.fetch_add(1, Relaxed);
        }
        if !st
            .spool
            .wait_stream(&sensor.name, &stream, base, ORDER_WAIT)
            .await
        {
            st.stats.out_of_order.fetch_add(1, Relaxed);
            return error(
                StatusCode::CONFLICT,
                "an earlier batch of this stream is not stored yet; send it first",
                None,
            );
        }
    }
    let Ok(permit) = st.inflight.clone().try_acquire_owned() else {
        st.stats.overloaded.fetch_add(1, Relaxed);
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests in flight",
            Some(1),
        );
    };
    if st.spool.is_full() {
        st.stats.overloaded.fetch_add(1, Relaxed);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "spool full; store is behind",
            Some(5),
        );
    }
    let req = Request {
        encoding,
        stream,
        base,
    };
    let st2 = st.clone();
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        process(&st2, &sensor, &req, &body)
    });
    match work.await {
        Ok(Ok(reply)) => {
            st.stats.accepted.fetch_add(reply.accepted as u64, Relaxed);
            st.stats
                .duplicates
                .fetch_add(reply.duplicates as u64, Relaxed);
            st.stats.rejected.fetch_add(reply.rejected as u64, Relaxed);
            (StatusCode::OK, axum::Json(reply)).into_response()
        }
        Ok(Err(reject)) => reject.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ingest task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error", Some(1))
        }
    }
}

thread_local! {
    /// Each blocking ingest thread decodes into the same buffer request after request: a
    /// fresh multi-megabyte allocation per request costs more in page faults than the parsing.
    static DECODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers above this are not kept between requests.
const KEEP_BUFFER: usize = 64 << 20;

/// How long an ordered request waits for the earlier batches of its stream.
const ORDER_WAIT: Duration = Duration::from_secs(20);

/// What the headers say about a request's body.
struct Request {
    encoding: Encoding,
    /// The stream the lines come from; empty when the client names none.
    stream: String,
    /// Stream offset of the body's first byte.
    base: u64,
}

fn process(
    st: &AppState,
    sensor: &Sensor,
    req: &Request,
    body: &[u8],
) -> Result<IngestReply, Reject> {
    let mut text = DECODED.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let reply = parsed::decode_body(req.encoding, body, st.cfg.max_decoded, &mut text)
        .map_err(|e| match e {
            DecodeError::TooLarge(_) => {
                Reject::new(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string(), None)
            }
            DecodeError::Corrupt(_) => Reject::new(StatusCode::BAD_REQUEST, &e.to_string(), None),
        })
        .and_then(|()| store(st, sensor, req, body, &text));
    if text.capacity() <= KEEP_BUFFER {
        DECODED.with(|b| *b.borrow_mut() = text);
    }
    reply
}

/// Validates, enriches and encodes the lines of a decoded body (`text`) and appends the
/// request (`body` as sent) with its good events to the spool.
fn store(
    st: &AppState,
    sensor: &Sensor,
    req: &Request,
    body: &[u8],
    text: &[u8],
) -> Result<IngestReply, Reject> {
    let (stream, base) = (req.stream.as_str(), req.base);
    let cutoff = if stream.is_empty() {
        0
    } else {
        st.spool.stream_next(&sensor.name, stream).unwrap_or(0)
    };
    let received = crate::schema::now_secs();
    let origin = Origin {
        tenant: &sensor.tenant,
        sensor: &sensor.name,
        received,
    };
    let mut rows = Parsed::default();
    let report = parsed::parse_lines(
        text,
        base,
        cutoff,
        origin,
        &st.enrich,
        st.cfg.max_listed_errors,
        &mut rows,
    );
    let stream_end = base + text.len() as u64;
    let appended = if rows.events.is_empty() {
        if !stream.is_empty() {
            st.spool.advance(&sensor.name, stream, stream_end);
        }
        crate::spool::Appended {
            batch: None,
            stored: 0,
            duplicates: 0,
        }
    } else {
        let batch = Batch {
            tenant: &sensor.tenant,
            sensor: &sensor.name,
            stream,
            stream_end,
            base,
            received,
            encoding: req.encoding,
            body,
        };
        st.spool.append(&batch, rows).map_err(|e| {
            tracing::error!(error = %e, "spool append failed");
            Reject::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "spool cannot be written",
                Some(5),
            )
        })?
    };
    Ok(IngestReply {
        accepted: appended.stored,
        duplicates: report.duplicates + appended.duplicates,
        rejected: report.rejected,
        errors: report
            .errors
            .into_iter()
            .map(|(line, reason)| LineReject { line, reason })
            .collect(),
    })
}

async fn metrics(State(st): State<Arc<AppState>>) -> String {
    let s = &st.stats;
    let w = &st.writer;
    format!(
        "khien_collector_requests_total {}\nkhien_collector_events_accepted_total {}\n\
         khien_collector_events_duplicate_total {}\nkhien_collector_events_rejected_total {}\n\
         khien_collector_unauthorized_total {}\nkhien_collector_overloaded_total {}\n\
         khien_collector_spool_bytes {}\nkhien_collector_rows_written_total {}\n\
         khien_collector_inserts_total {}\nkhien_collector_insert_retries_total {}\n\
         khien_collector_rows_set_aside_total {}\nkhien_collector_stored_batch {}\n\
         khien_collector_ordered_waits_total {}\nkhien_collector_out_of_order_total {}\n\
         khien_collector_reparsed_batches_total {}\n",
        s.requests.load(Relaxed),
        s.accepted.load(Relaxed),
        s.duplicates.load(Relaxed),
        s.rejected.load(Relaxed),
        s.unauthorized.load(Relaxed),
        s.overloaded.load(Relaxed),
        st.spool.bytes(),
        w.rows.load(Relaxed),
        w.inserts.load(Relaxed),
        w.retries.load(Relaxed),
        w.rejected_rows.load(Relaxed),
        w.stored_batch.load(Relaxed),
        s.ordered_waits.load(Relaxed),
        s.out_of_order.load(Relaxed),
        w.reparsed.load(Relaxed),
    )
}

/// Serves `router` over TLS on `listener` until `shutdown` turns true.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}
