//! Batch jobs (`/v1/jobs`, on servers that share a database): work larger than one request,
//! queued on the server side and run by any worker, then fetched. A batch of more images than
//! one ciphertext has slots is split into one job per full batch.

use std::path::Path;
use std::time::{Duration, Instant};

use unseen_client_core::classify;

use crate::cnn::{register_keys, with_retries, CnnClient, Costs, RemoteBatch};
use crate::Error;

/// Largest job reply read (the encrypted logits of one batch).
const MAX_RESULT: u64 = 256 << 20;

/// How often a job's state is asked for while it runs.
const POLL: Duration = Duration::from_millis(250);

fn conn(base: &str, message: String) -> Error {
    Error::Connection {
        server: base.into(),
        message,
    }
}

/// `(status, body)` of one request, any status.
fn call(
    base: &str,
    request: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
) -> Result<(u16, Vec<u8>), Error> {
    let mut response = crate::authorized(request)
        .call()
        .map_err(|e| conn(base, e.to_string()))?;
    read(base, &mut response)
}

fn read(
    base: &str,
    response: &mut ureq::http::Response<ureq::Body>,
) -> Result<(u16, Vec<u8>), Error> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_RESULT)
        .read_to_vec()
        .map_err(|e| conn(base, format!("reading the reply: {e}")))?;
    Ok((status, body))
}

fn json(base: &str, status: u16, body: &[u8]) -> Result<serde_json::Value, Error> {
    if !(200..300).contains(&status) {
        return Err(crate::cnn::server_error(base, status, body));
    }
    serde_json::from_slice(body).map_err(|_| conn(base, "reply is not JSON".into()))
}

/// Queues one encrypted batch; `Ok(None)` when the server does not know the key id. Retried
/// only when the server said it was unavailable (a lost connection may have queued the job,
/// and a job must not run twice for nothing).
fn submit_once(
    base: &str,
    model: &str,
    key_id: &str,
    batch: &[u8],
) -> Result<Option<String>, Error> {
    let agent = crate::agent(Duration::from_secs(300))?;
    let mut response = crate::authorized(agent.post(&format!("{base}/v1/jobs?model={model}")))
        .header("content-type", "application/octet-stream")
        .header("unseen-key-id", key_id)
        .send(batch)
        .map_err(|e| conn(base, e.to_string()))?;
    let (status, body) = read(base, &mut response)?;
    if status == 404 {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if v["error"]["code"] == "unknown_key" {
            return Ok(None);
        }
    }
    let v = json(base, status, &body)?;
    v["job_id"]
        .as_str()
        .map(|id| Some(id.to_string()))
        .ok_or_else(|| conn(base, "reply has no job_id".into()))
}

fn submit(base: &str, model: &str, key_id: &str, batch: &[u8]) -> Result<Option<String>, Error> {
    let mut outcome = submit_once(base, model, key_id, batch);
    for pause in [500, 1000, 2000] {
        match &outcome {
            Err(Error::Server { code, .. })
                if matches!(
                    code.as_str(),
                    "busy" | "http_503" | "store_unavailable" | "queue_unavailable"
                ) =>
            {
                std::thread::sleep(Duration::from_millis(pause));
                outcome = submit_once(base, model, key_id, batch);
            }
            _ => break,
        }
    }
    outcome
}

/// Queues a batch, registering the folder's evaluation keys first if the server does not have
/// them; the job id and the bytes of keys sent.
pub fn submit_job(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    batch: &[u8],
) -> Result<(String, Option<usize>), Error> {
    let (model, key_id) = (&client.spec.model, &client.spec.key_id);
    if let Some(id) = submit(base, model, key_id, batch)? {
        return Ok((id, None));
    }
    let bundle = client.eval_keys(dir)?;
    register_keys(base, &bundle)?;
    let id = submit(base, model, key_id, batch)?.ok_or_else(|| Error::Server {
        code: "unknown_key".into(),
        message: "the server forgot the keys it just registered".into(),
    })?;
    Ok((id, Some(bundle.len())))
}

/// A job's state as the server reports it (`GET /v1/jobs/{id}`).
pub fn job_status(base: &str, id: &str) -> Result<serde_json::Value, Error> {
    with_retries(|| {
        let agent = crate::agent(Duration::from_secs(60))?;
        let (status, body) = call(base, agent.get(&format!("{base}/v1/jobs/{id}")))?;
        json(base, status, &body)
    })
}

/// Waits (up to `timeout`) for the job to end; its encrypted result, or its error.
pub fn wait_job(base: &str, id: &str, timeout: Duration) -> Result<Vec<u8>, Error> {
    let started = Instant::now();
    loop {
        let status = job_status(base, id)?;
        match status["state"].as_str() {
            Some("done") => break,
            Some("failed") => {
                return Err(Error::Server {
                    code: status["error"]["code"]
                        .as_str()
                        .unwrap_or("job_failed")
                        .into(),
                    message: format!(
                        "job {id} failed: {}",
                        status["error"]["message"]
                            .as_str()
                            .unwrap_or("no reason given")
                    ),
                })
            }
            _ if started.elapsed() > timeout => {
                return Err(conn(
                    base,
                    format!("job {id} has not finished after {} s", timeout.as_secs()),
                ))
            }
            _ => std::thread::sleep(POLL),
        }
    }
    with_retries(|| {
        let agent = crate::agent(Duration::from_secs(300))?;
        let (status, body) = call(base, agent.get(&format!("{base}/v1/jobs/{id}/result")))?;
        if !(200..300).contains(&status) {
            return Err(crate::cnn::server_error(base, status, &body));
        }
        Ok(body)
    })
}

/// Classifies `images` through batch jobs: one job per `per_job` images (at most the slots of
/// a ciphertext), all queued before any is awaited, so every worker can take one.
pub fn predict_batch_jobs(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    images: &[&[u8]],
    per_job: usize,
    timeout: Duration,
) -> Result<RemoteBatch, Error> {
    let per_job = per_job.max(1);
    let t = Instant::now();
    let requests = images
        .chunks(per_job)
        .map(|chunk| client.encrypt_batch(chunk))
        .collect::<Result<Vec<_>, _>>()?;
    let encrypt = t.elapsed();
    let t = Instant::now();
    let mut registered_keys = None;
    let mut jobs = Vec::new();
    for request in &requests {
        let (id, sent) = submit_job(base, dir, client, request)?;
        registered_keys = registered_keys.or(sent);
        jobs.push(id);
    }
    let replies = jobs
        .iter()
        .map(|id| wait_job(base, id, timeout))
        .collect::<Result<Vec<_>, _>>()?;
    let round_trip = t.elapsed();
    let t = Instant::now();
    let mut results = Vec::with_capacity(images.len());
    for (reply, chunk) in replies.iter().zip(images.chunks(per_job)) {
        results.extend(
            client
                .decrypt_batch(reply, chunk.len())?
                .into_iter()
                .map(classify),
        );
    }
    let costs = Costs {
        encrypt,
        round_trip,
        server_ms: None,
        decrypt: t.elapsed(),
        upload_bytes: requests.iter().map(Vec::len).sum(),
        download_bytes: replies.iter().map(Vec::len).sum(),
        registered_keys,
    };
    Ok(RemoteBatch { results, costs })
}
