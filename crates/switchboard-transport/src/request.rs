//! What the transport reads from an upgrade request: the token, the client id, the
//! subprotocols offered.

use http::Uri;
use http::header::{self, HeaderMap};
use switchboard_protocol::ClientId;

/// A query parameter's value as `application/x-www-form-urlencoded` defines it: `+` is a
/// space and `%XX` a byte (a malformed escape stays as written), through `percent-encoding`,
/// like every decoding in switchboard. `None` when the bytes are not UTF-8.
pub(crate) fn query_value(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// The WebSocket subprotocol of switchboard's Protocol v1. A client that offers it in
/// `Sec-WebSocket-Protocol` gets it back as the one selected.
pub const SUBPROTOCOL: &str = "switchboard.v1";

/// The prefix of a subprotocol that carries the client's token instead of the URL (which
/// proxies log): `Sec-WebSocket-Protocol: switchboard.v1, switchboard.bearer.<token>`. A
/// JWT's characters are all valid in a subprotocol name. The server never selects it, so the
/// token is not sent back.
pub const TOKEN_SUBPROTOCOL_PREFIX: &str = "switchboard.bearer.";

/// The subprotocols a client offered, in order (every `Sec-WebSocket-Protocol` header, split
/// at commas).
pub(crate) fn offered_subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The token from `?token=`, `Authorization: Bearer`, or a
/// [`switchboard.bearer.<token>`](TOKEN_SUBPROTOCOL_PREFIX) subprotocol, in that order.
pub(crate) fn token_of(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(query) = uri.query() {
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("token=")
                && let Some(value) = query_value(value)
                && !value.is_empty()
            {
                return Some(value);
            }
        }
    }
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|auth| auth.to_str().ok())
        .and_then(|auth| auth.split_once(' '))
        .filter(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .map(|(_, token)| token.trim().to_owned());
    from_header.or_else(|| {
        offered_subprotocols(headers)
            .find_map(|p| p.strip_prefix(TOKEN_SUBPROTOCOL_PREFIX))
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
    })
}

/// The `client` query parameter: the id the client instance gave for itself (see
/// [`ClientId`]). `Ok(None)` when absent; an error message when present but invalid.
pub(crate) fn client_of(uri: &Uri) -> Result<Option<ClientId>, String> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let mut found = None;
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("client=") {
            if found.is_some() {
                return Err("more than one client parameter".into());
            }
            let value = query_value(value)
                .ok_or_else(|| "the client parameter is not percent-encoded UTF-8".to_owned())?;
            found = Some(ClientId::new(&value).map_err(|e| e.to_string())?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    #[test]
    fn tokens_come_from_the_query_or_a_bearer_header() {
        let req = Request::get("/ws?a=1&token=abc%2Edef").body(()).unwrap();
        assert_eq!(
            token_of(req.uri(), req.headers()).as_deref(),
            Some("abc.def")
        );
        let req = Request::get("/ws")
            .header("authorization", "Bearer xyz")
            .body(())
            .unwrap();
        assert_eq!(token_of(req.uri(), req.headers()).as_deref(), Some("xyz"));
        let req = Request::get("/ws")
            .header("authorization", "Basic xyz")
            .body(())
            .unwrap();
        assert_eq!(token_of(req.uri(), req.headers()), None);
    }
}
