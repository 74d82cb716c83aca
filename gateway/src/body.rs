//! Reading request bodies: bounded collection and bounded gzip/deflate decoding, so neither a
//! large body nor a decompression bomb can exhaust memory.

use std::io::Read;

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;

use crate::error::GatewayError;

/// Collects the body and decodes its `Content-Encoding`; both the wire bytes and the decoded
/// bytes are capped at `limit`.
pub async fn read_decoded<B>(
    body: B,
    headers: &HeaderMap,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, GatewayError>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let encoding = content_encoding(headers)?;
    if let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok()) {
        if length > limit {
            return Err(GatewayError::BodyTooLarge { limit });
        }
    }
    // A client trickling its body (slowloris) must not hold a request slot forever.
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect())
        .await
        .map_err(|_| GatewayError::BodyTimeout(timeout.as_millis() as u64))?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                GatewayError::BodyTooLarge { limit }
            } else {
                GatewayError::BodyRead(e.to_string())
            }
        })?;
    let wire = collected.to_bytes();
    match encoding {
        Encoding::Identity => Ok(wire.to_vec()),
        Encoding::Gzip => decode(flate2::read::GzDecoder::new(&wire[..]), "gzip", limit),
        Encoding::Deflate => decode(flate2::read::ZlibDecoder::new(&wire[..]), "deflate", limit),
    }
}

enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, GatewayError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    let text = value.to_str().unwrap_or_default().trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        _ => Err(GatewayError::UnsupportedEncoding(text)),
    }
}

/// Reads `reader` to its end, refusing more than `limit` bytes (a decompression bomb).
pub(crate) fn decode(reader: impl Read, encoding: &'static str, limit: usize) -> Result<Vec<u8>, GatewayError> {
    let mut out = Vec::new();
    // One byte past the limit tells "exactly at the limit" from "over it".
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| GatewayError::BadCompression { encoding, reason: e.to_string() })?;
    if out.len() > limit {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    Ok(out)
}
