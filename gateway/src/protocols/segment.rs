//! The Segment protocol: the body already is canonical, so the client's own bytes go on to the
//! zero-copy splice untouched.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::{Canonical, Outcome};
use crate::endpoints::IngestKind;
use crate::error::{json_response, list_rejected};

pub(super) fn translate(kind: IngestKind, body: Vec<u8>) -> Canonical {
    Canonical { body: Some((body, kind)), ..Canonical::default() }
}

/// `{"success":true}`, plus the rejected events when some were.
pub(super) fn respond(outcome: &Outcome) -> Response<Full<Bytes>> {
    if outcome.rejected.is_empty() {
        return crate::app::success();
    }
    let mut body = json!({"success": true});
    list_rejected(&mut body, &outcome.rejected);
    json_response(StatusCode::OK, &body)
}
