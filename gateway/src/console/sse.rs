//! The console's live stream as Server-Sent Events: the recent records first, then each new
//! one that passes the browser's filter, and a `sampled` event when records were left out.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{broadcast, mpsc, watch};

use super::feed::{Feed, Item};
use super::summary::Filter;

/// Frames buffered per browser between its task and its socket.
const FRAMES: usize = 64;
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A response body fed by a channel: the stream ends when its task drops the sender.
#[derive(Debug)]
pub struct ChannelBody {
    frames: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.frames.poll_recv(cx).map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// Opens a stream for one browser; it ends when the browser goes away or `closing` turns true.
pub fn open(feed: Arc<Feed>, filter: Filter, mut closing: watch::Receiver<bool>) -> ChannelBody {
    let (frames, receiver) = mpsc::channel(FRAMES);
    feed.streams.fetch_add(1, Ordering::Relaxed);
    feed.touch();
    let (recent, mut live) = {
        let view = feed.lock();
        let mut recent: Vec<Arc<Item>> = view.recent.iter().flatten().cloned().collect();
        recent.sort_by_key(|item| item.lane as u8);
        (recent, feed.live.subscribe())
    };
    tokio::spawn(async move {
        let _left = Left(feed.clone());
        if frames.send(Bytes::from_static(b"retry: 2000\n\n")).await.is_err() {
            return;
        }
        for item in recent.iter().filter(|item| filter.matches(&item.summary)) {
            if frames.send(event(item.lane.as_str(), item.json())).await.is_err() {
                return;
            }
        }
        loop {
            let frame = tokio::select! {
                received = live.recv() => match received {
                    Ok(item) if filter.matches(&item.summary) => event(item.lane.as_str(), item.json()),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => event("sampled", &format!("{{\"missed\":{missed}}}")),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = tokio::time::sleep(KEEP_ALIVE) => Bytes::from_static(b": keep-alive\n\n"),
                _ = closing.changed() => return,
            };
            feed.touch();
            if frames.send(frame).await.is_err() {
                return;
            }
        }
    });
    ChannelBody { frames: receiver }
}

/// Counts the stream as closed when its task ends, however it ends.
struct Left(Arc<Feed>);

impl Drop for Left {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}
