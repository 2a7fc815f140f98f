//! What the API reads from a request: path segments, query values and a bounded body.

use bytes::Bytes;
use http::header;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper::body::Incoming;
use switchboard_transport::ResponseBody;

use crate::respond::error;
use crate::state::AppState;

/// A path segment, percent-decoded (`+` is itself there); `None` when the bytes are not
/// UTF-8. Like every decoding in switchboard, through `percent-encoding`: a malformed escape
/// stays as written (and then fails the channel's validation, `%` not being allowed).
pub(super) fn path_segment(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// A query parameter's value (`application/x-www-form-urlencoded`: `+` is a space, then as a
/// path segment), as the transport reads `?token=` and `?client=`.
pub(super) fn query_value(raw: &str) -> Option<String> {
    path_segment(&raw.replace('+', " "))
}

/// The body of a POST, up to `MAX_MESSAGE_BYTES` (413 past it, whatever its declared
/// length); the error is the answer.
pub(super) async fn read_body(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<Bytes, Response<ResponseBody>> {
    let limit = state.config.max_message_bytes.get();
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("the body is larger than MAX_MESSAGE_BYTES ({limit} bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    // The limit applies while reading: a body without (or lying about) its length is cut off
    // at the limit, never buffered past it.
    let body: Bytes = match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<LengthLimitError>() => return Err(too_large()),
        Err(err) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                &format!("could not read the body: {err}"),
            ));
        }
    };
    Ok(body)
}
