//! Fetching documents and file bodies over http(s) (reqwest with rustls) and
//! `file://`, with byte ranges for resuming.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::io::AsyncSeekExt;
use url::Url;

use crate::error::{Error, Result};

/// A stream of body chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A body being received.
pub struct Body {
    /// Where the body starts in the file: the requested offset when the
    /// server honoured the range, 0 when it sent the whole file.
    pub offset: u64,
    /// The chunks.
    pub stream: ByteStream,
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("offset", &self.offset)
            .finish()
    }
}

/// Reads from mirrors.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
}

fn download_error(url: &Url, reason: impl std::fmt::Display) -> Error {
    Error::Download {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// Chunk size for `file://` reads: big enough to keep the hasher busy,
/// small enough that a few in flight stay well under the memory budget.
const FILE_CHUNK: usize = 1 << 20;

impl Fetcher {
    /// A fetcher with MAAS-like timeouts: a connect timeout and a read
    /// timeout, but no overall deadline (images are gigabytes).
    pub fn new() -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .user_agent(concat!("maas-rs-images/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Invalid(format!("cannot build HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// Fetches a whole document of at most `limit` bytes.
    pub async fn document(&self, url: &Url, limit: u64) -> Result<Bytes> {
        let mut body = self.open(url, 0).await?;
        let mut out = Vec::new();
        while let Some(chunk) = body.stream.next().await {
            let chunk = chunk?;
            if (out.len() + chunk.len()) as u64 > limit {
                return Err(Error::TooLarge {
                    url: url.to_string(),
                    limit,
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }

    /// Whether a document exists (HTTP 2xx / file present), for optional
    /// detached signatures.
    pub async fn exists(&self, url: &Url) -> bool {
        match url.scheme() {
            "file" => url
                .to_file_path()
                .is_ok_and(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file())),
            "http" | "https" => self
                .client
                .head(url.clone())
                .send()
                .await
                .is_ok_and(|r| r.status().is_success()),
            _ => false,
        }
    }

    /// Opens a body from `offset` (a `Range` request when `offset > 0`).
    pub async fn open(&self, url: &Url, offset: u64) -> Result<Body> {
        match url.scheme() {
            "file" => self.open_file(url, offset).await,
            "http" | "https" => self.open_http(url, offset).await,
            _ => Err(Error::UnsupportedUrl(url.to_string())),
        }
    }

    async fn open_file(&self, url: &Url, offset: u64) -> Result<Body> {
        let path = url
            .to_file_path()
            .map_err(|()| download_error(url, "not a local path"))?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| download_error(url, e))?;
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .map_err(|e| download_error(url, e))?;
        }
        let url = url.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, FILE_CHUNK)
            .map_err(move |e| download_error(&url, e));
        Ok(Body {
            offset,
            stream: Box::pin(stream),
        })
    }

    async fn open_http(&self, url: &Url, offset: u64) -> Result<Body> {
        let mut req = self.client.get(url.clone());
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let resp = req.send().await.map_err(|e| download_error(url, e))?;
        let status = resp.status();
        let start = match status {
            reqwest::StatusCode::PARTIAL_CONTENT if offset > 0 => offset,
            s if s.is_success() => 0,
            s => return Err(download_error(url, format!("HTTP {s}"))),
        };
        let url = url.clone();
        let stream = resp
            .bytes_stream()
            .map_err(move |e| download_error(&url, format!("{e:#}")));
        Ok(Body {
            offset: start,
            stream: Box::pin(stream),
        })
    }
}
