//! The tracing span a session runs in.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tracing::Span;

/// The span of one session: `session{connection_id, user, peer}`, a child of `parent` (the
/// span that was current where the upgrade was answered: the host's request span). At
/// DEBUG level, like the per-request spans of tower-http and hyper, under a target of its own:
/// `switchboard_transport::session=debug` turns it on without the transport's debug events.
pub(crate) fn session_span(
    parent: &Span,
    connection_id: &str,
    user: Option<&str>,
    peer: SocketAddr,
) -> Span {
    tracing::debug_span!(
        target: "switchboard_transport::session",
        parent: parent,
        "session",
        connection_id,
        user = user.unwrap_or("-"),
        %peer,
    )
}

pin_project_lite::pin_project! {
    /// `inner`, polled inside `span`. Unlike `tracing::Instrument` it keeps the span behind
    /// a pointer, and none at all while the span is disabled: every connection's task
    /// carries this, and eight bytes keep it in its allocation size class.
    pub(crate) struct InSpan<F> {
        span: Option<Box<Span>>,
        #[pin]
        inner: F,
    }
}

impl<F> InSpan<F> {
    pub(crate) fn new(span: Span, inner: F) -> Self {
        Self {
            span: (!span.is_disabled()).then(|| Box::new(span)),
            inner,
        }
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.as_deref().map(Span::enter);
        this.inner.poll(cx)
    }
}
