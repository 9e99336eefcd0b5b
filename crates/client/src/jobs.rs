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

/// After this long in the queue, the client says that no worker may be running.
const QUEUED_HINT: Duration = Duration::from_secs(30);

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
    let url = format!("{base}/v1/jobs?model={}", query_escape(model));
    let mut response = crate::authorized(agent.post(&url))
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

/// `s` percent-encoded for a query value (all but RFC 3986's unreserved characters).
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
    let mut hinted = false;
    loop {
        let status = job_status(base, id)?;
        if !hinted && status["state"] == "queued" && started.elapsed() > QUEUED_HINT {
            hinted = true;
            tracing::warn!(
                "job {id} is still queued after {} s: the workers are busy, or none is running (unseen worker, or unseen serve --job-workers)",
                QUEUED_HINT.as_secs()
            );
        }
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

/// Runs `count` inputs through batch jobs of `per_job` (at most the slots of a ciphertext):
/// `encrypt` makes the batch of each range of inputs. Each batch is submitted as soon as it is
/// encrypted (so one batch at a time is held here), and every job is queued before any is
/// awaited, so every worker can take one. The decrypted logits of every input, in order, and
/// the costs.
pub fn run_jobs(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    count: usize,
    per_job: usize,
    timeout: Duration,
    encrypt: impl Fn(std::ops::Range<usize>) -> Result<Vec<u8>, unseen_client_core::Error>,
) -> Result<(Vec<Vec<f64>>, Costs), Error> {
    let per_job = per_job.clamp(1, client.batch_capacity().max(1));
    let ranges: Vec<std::ops::Range<usize>> = (0..count)
        .step_by(per_job)
        .map(|start| start..(start + per_job).min(count))
        .collect();
    let (mut encrypt_time, mut submit_time) = (Duration::ZERO, Duration::ZERO);
    let (mut upload_bytes, mut registered_keys) = (0, None);
    let mut jobs = Vec::with_capacity(ranges.len());
    for range in &ranges {
        let t = Instant::now();
        let request = encrypt(range.clone())?;
        encrypt_time += t.elapsed();
        let t = Instant::now();
        let (id, sent) = submit_job(base, dir, client, &request)?;
        submit_time += t.elapsed();
        upload_bytes += request.len();
        registered_keys = registered_keys.or(sent);
        jobs.push(id);
    }
    let t = Instant::now();
    let (mut logits, mut download_bytes, mut decrypt) =
        (Vec::with_capacity(count), 0, Duration::ZERO);
    for (id, range) in jobs.iter().zip(&ranges) {
        let reply = wait_job(base, id, timeout)?;
        download_bytes += reply.len();
        let d = Instant::now();
        logits.extend(client.decrypt_batch(&reply, range.len())?);
        decrypt += d.elapsed();
    }
    let costs = Costs {
        encrypt: encrypt_time,
        round_trip: submit_time + t.elapsed().saturating_sub(decrypt),
        server_ms: None,
        decrypt,
        upload_bytes,
        download_bytes,
        registered_keys,
    };
    Ok((logits, costs))
}

/// Classifies `images` through batch jobs of `per_job` images (see [`run_jobs`]).
pub fn predict_batch_jobs(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    images: &[&[u8]],
    per_job: usize,
    timeout: Duration,
) -> Result<RemoteBatch, Error> {
    let (logits, costs) = run_jobs(base, dir, client, images.len(), per_job, timeout, |r| {
        client.encrypt_batch(&images[r])
    })?;
    Ok(RemoteBatch {
        results: logits.into_iter().map(classify).collect(),
        costs,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn model_names_are_escaped_in_the_query() {
        assert_eq!(
            super::query_escape("ciphernet-mnist_2.x~"),
            "ciphernet-mnist_2.x~"
        );
        assert_eq!(super::query_escape("a b&c=é"), "a%20b%26c%3D%C3%A9");
    }
}
