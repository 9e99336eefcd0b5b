//! The TCP protocol of the original python-paillier salary service: JSON requests back to back
//! on one connection, each answered by a JSON reply that ends in `]}` with no newline.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use unseen_wire::framing::Framer;
use unseen_wire::salary::{legacy_error, legacy_reply, PredictRequest};
use unseen_wire::WireError;

use crate::predict::predict_async;
use crate::{ApiError, AppState};

/// Accepts connections until `stop` turns true; each connection runs in its own task.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(state.limits.max_connections));
    loop {
        tokio::select! {
            _ = crate::stopped(&mut stop) => return Ok(()),
            accepted = listener.accept() => {
                let (mut socket, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    let msg = legacy_error(&WireError::new("busy", "too many connections, try again later"));
                    let _ = socket.write_all(msg.as_bytes()).await;
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(socket, state).await {
                        tracing::debug!(%peer, "legacy connection closed: {e}");
                    }
                    drop(permit);
                });
            }
        }
    }
}

/// Serves one connection until the client closes it, stalls, or sends something invalid.
async fn handle(mut socket: TcpStream, state: Arc<AppState>) -> std::io::Result<()> {
    let mut framer = Framer::new(state.limits.max_body);
    let mut buf = vec![0u8; 64 * 1024];
    let Some(model) = state.legacy_model.clone() else {
        return Ok(());
    };
    loop {
        // Answer every complete request already buffered.
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    let reply = match PredictRequest::parse(&frame) {
                        Ok(req) => predict_async(state.clone(), model.clone(), req).await,
                        Err(e) => Err(ApiError::from(e)),
                    };
                    match reply {
                        Ok(result) => socket.write_all(legacy_reply(&result).as_bytes()).await?,
                        Err(e) => {
                            socket
                                .write_all(legacy_error(&e.to_wire()).as_bytes())
                                .await?;
                            return Ok(());
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    socket.write_all(legacy_error(&e).as_bytes()).await?;
                    return Ok(());
                }
            }
        }
        let read = tokio::time::timeout(state.limits.idle_timeout, socket.read(&mut buf)).await;
        let n = match read {
            Ok(r) => r?,
            Err(_) => {
                let err = WireError::new("timeout", "no complete request within the idle timeout");
                let _ = socket.write_all(legacy_error(&err).as_bytes()).await;
                return Ok(());
            }
        };
        if n == 0 {
            return Ok(());
        }
        if let Err(e) = framer.push(&buf[..n]) {
            socket.write_all(legacy_error(&e).as_bytes()).await?;
            return Ok(());
        }
    }
}
