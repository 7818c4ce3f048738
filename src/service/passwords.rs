//! Password hashing: Argon2id on threads of its own, behind a semaphore.
//!
//! The semaphore bounds how many hashes run at once (default: cores − 1), so a flood of
//! logins queues here instead of taking every core from token checks. The hashes run on
//! one dedicated thread per permit, at a lower scheduling priority than the rest of the
//! process (nice +10 on Linux): when a hash and a token check want the same core, the
//! kernel gives it to the token check, which needs microseconds, and the hash, which
//! needs tens of milliseconds anyway, barely notices. Unknown users are
//! verified against a dummy hash made with the same parameters, so the time of a login
//! does not tell whether the account exists.
//!
//! Each hash needs `m` KiB of work memory (19 MiB at the OWASP parameters). Allocating it
//! per hash costs a page fault per 4 KiB page, since the allocator hands memory that large
//! back to the kernel on free, about 5,000 faults and several milliseconds per login. So the
//! work areas are kept and reused: at most one per permit, made on first use. Argon2
//! overwrites every block before reading it, so a reused area gives the same result as a
//! fresh one. Areas are released once a minute passes without a hash
//! ([`Hasher::release_idle`]), so an instance nobody logs in to stays small.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::Semaphore;

/// How much lower than the rest of the process the hashing threads run (nice steps).
const HASH_NICENESS: i32 = 10;

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// The longest a hash waits for a permit. A login reserves its attempt before it waits
/// here, and a reservation older than `domain::lockout::RESERVATION_TTL` (30 s) is taken
/// as abandoned; a login must reach its verdict well before that, or the lockout would
/// admit more guesses beside it.
const MAX_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Hashing is so far behind that a hash waited `MAX_QUEUE_WAIT` for its turn (a 503:
/// the request may be retried).
#[derive(Debug, thiserror::Error)]
#[error("password hashing is overloaded; retry shortly")]
pub struct Overloaded;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Work areas of `params.block_count()` blocks, free for the next hash.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// A hash ran since the last [`Hasher::release_idle`].
    used: Arc<AtomicBool>,
    dummy: Arc<str>,
    /// Hashes waiting for a permit (a metric).
    queue: prometheus::IntGauge,
    /// The hashing threads' queue; they stop when the last `Hasher` clone is dropped.
    jobs: mpsc::Sender<Job>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash uses other parameters than the configured ones.
    pub needs_rehash: bool,
}

impl Hasher {
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: usize,
        queue: prometheus::IntGauge,
    ) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy = hash_with(&params, "tradeauth dummy password", &mut Vec::new())?;
        let concurrency = concurrency.max(1);
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            memory: Arc::new(Mutex::new(Vec::new())),
            used: Arc::new(AtomicBool::new(false)),
            dummy: dummy.into(),
            queue,
            jobs: start_threads(concurrency)?,
        })
    }

    /// Frees the kept work areas when no hash ran since the previous call (the
    /// background loop calls this every minute).
    pub fn release_idle(&self) {
        if !self.used.swap(false, Ordering::Relaxed) {
            if let Ok(mut free) = self.memory.lock() {
                free.clear();
            }
        }
    }

    /// Work areas kept for reuse.
    pub fn kept_work_areas(&self) -> usize {
        self.memory.lock().map(|m| m.len()).unwrap_or(0)
    }

    async fn permit(&self) -> anyhow::Result<tokio::sync::OwnedSemaphorePermit> {
        self.queue.inc();
        let permit =
            tokio::time::timeout(MAX_QUEUE_WAIT, self.permits.clone().acquire_owned()).await;
        self.queue.dec();
        Ok(permit.map_err(|_| Overloaded)??)
    }

    /// Runs `f` on a hashing thread with a work area, which is kept for the next hash
    /// when it has the configured size. The permit is held until `f` returns, even when
    /// the caller stops waiting, so no more hashes than permits ever run.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let permit = self.permit().await?;
        self.used.store(true, Ordering::Relaxed);
        let memory = self.memory.clone();
        let blocks = self.params.block_count();
        let (done, result) = tokio::sync::oneshot::channel();
        let job = move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let mut work = memory
                    .lock()
                    .map_err(|_| anyhow::anyhow!("hash memory lock poisoned"))?
                    .pop()
                    .unwrap_or_default();
                let result = f(&mut work);
                if work.len() == blocks {
                    if let Ok(mut free) = memory.lock() {
                        free.push(work);
                    }
                }
                result
            }))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("password hash panicked")));
            drop(permit);
            let _ = done.send(result);
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| anyhow::anyhow!("password-hash threads stopped"))?;
        result
            .await
            .map_err(|_| anyhow::anyhow!("password-hash thread stopped"))?
    }

    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        let params = self.params.clone();
        let pw = password.clone();
        self.run(move |work| hash_with(&params, pw.expose_secret(), work))
            .await
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no
    /// stored hash (unknown user) — the answer is then always `ok: false`.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> anyhow::Result<Verified> {
        let params = self.params.clone();
        let known = stored.is_some();
        let hash = stored
            .map(str::to_string)
            .unwrap_or_else(|| self.dummy.to_string());
        let pw = password.clone();
        self.run(move |work| {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let ok = verify_with(&parsed, pw.expose_secret(), work)?;
            // Only the cost parameters matter: a parsed hash also carries its output
            // length, which the configured `Params` leave at the default.
            let needs_rehash = parsed.algorithm != Algorithm::Argon2id.ident()
                || Params::try_from(&parsed)
                    .map(|p| {
                        (p.m_cost(), p.t_cost(), p.p_cost())
                            != (params.m_cost(), params.t_cost(), params.p_cost())
                    })
                    .unwrap_or(true);
            Ok(Verified {
                ok: ok && known,
                needs_rehash,
            })
        })
        .await
    }
}

/// Starts `n` hashing threads at a lower priority, taking jobs from one queue.
fn start_threads(n: usize) -> anyhow::Result<mpsc::Sender<Job>> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for i in 0..n {
        let queue = queue.clone();
        std::thread::Builder::new()
            .name(format!("tradeauth-hash-{i}"))
            .spawn(move || {
                lower_priority();
                loop {
                    // The lock is released before the job runs.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // every Hasher is gone
                    }
                }
            })?;
    }
    Ok(jobs)
}

/// Lowers the calling thread's scheduling priority by [`HASH_NICENESS`] (Linux nice
/// values are per thread). Any process may lower its own priority, so this fails only
/// under an unusual sandbox; hashing then runs at normal priority.
#[cfg(target_os = "linux")]
fn lower_priority() {
    use rustix::process::{getpriority_process, setpriority_process};
    let me = Some(rustix::thread::gettid());
    let nice = getpriority_process(me).unwrap_or(0);
    if let Err(e) = setpriority_process(me, (nice + HASH_NICENESS).min(19)) {
        tracing::warn!(error = %e, "could not lower the priority of a password-hash thread");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Argon2 of `password` into `len` output bytes, in `work` (grown to the size `params`
/// need; its old contents do not matter).
fn compute(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    len: usize,
    work: &mut Vec<Block>,
) -> anyhow::Result<Output> {
    let blocks = params.block_count();
    if work.len() != blocks {
        work.resize(blocks, Block::default());
    }
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, salt, out, &mut work[..])
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// A new Argon2id hash of `password` in PHC string form.
fn hash_with(params: &Params, password: &str, work: &mut Vec<Block>) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = compute(&argon, params, password.as_bytes(), raw_salt, len, work)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("argon2: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the stored hash, computed with the stored hash's own
/// algorithm, version and parameters. The comparison is constant-time (`Output`'s `==`).
fn verify_with(
    stored: &PasswordHash<'_>,
    password: &str,
    work: &mut Vec<Block>,
) -> anyhow::Result<bool> {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Ok(false);
    };
    let algorithm =
        Algorithm::try_from(stored.algorithm).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?
        .unwrap_or_default();
    let params = Params::try_from(stored).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
    let argon = Argon2::new(algorithm, version, params.clone());
    let computed = compute(
        &argon,
        &params,
        password.as_bytes(),
        raw_salt,
        expected.len(),
        work,
    )?;
    Ok(&computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    fn small() -> Params {
        Params::new(256, 2, 1, None).unwrap()
    }

    #[test]
    fn our_hashes_are_standard_phc_strings_any_argon2_verifier_accepts() {
        let mut work = Vec::new();
        let h = hash_with(&small(), "correct horse", &mut work).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=256,t=2,p=1$"), "{h}");
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"correct horsf", &parsed)
            .is_err());
    }

    #[test]
    fn a_reused_dirty_work_area_verifies_hashes_made_elsewhere() {
        // Hashes from the stock hasher, with other parameters and the older version.
        let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let theirs = [
            Argon2::new(Algorithm::Argon2id, Version::V0x13, small()),
            Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(512, 3, 2, Some(16)).unwrap(),
            ),
            Argon2::new(Algorithm::Argon2i, Version::V0x10, small()),
        ]
        .map(|a| a.hash_password(b"pw one", &salt).unwrap().to_string());
        // One work area for everything, full of another hash's blocks in between.
        let mut work = Vec::new();
        for h in &theirs {
            hash_with(&small(), "something else", &mut work).unwrap();
            let parsed = PasswordHash::new(h).unwrap();
            assert!(verify_with(&parsed, "pw one", &mut work).unwrap(), "{h}");
            assert!(!verify_with(&parsed, "pw two", &mut work).unwrap(), "{h}");
        }
    }

    fn hasher(concurrency: usize) -> Hasher {
        let gauge = prometheus::IntGauge::new("q", "q").unwrap();
        Hasher::new(256, 2, 1, concurrency, gauge).unwrap()
    }

    #[tokio::test]
    async fn work_areas_are_kept_per_permit_and_released_after_an_idle_minute() {
        let h = hasher(2);
        assert_eq!(h.kept_work_areas(), 0, "nothing kept before the first hash");
        let pw = SecretString::from("a password".to_string());
        let stored = h.hash(&pw).await.unwrap();
        let checks = (0..8).map(|_| h.verify(&pw, Some(&stored)));
        for v in futures::future::join_all(checks).await {
            assert_eq!(
                v.unwrap(),
                Verified {
                    ok: true,
                    needs_rehash: false
                }
            );
        }
        let kept = h.kept_work_areas();
        assert!((1..=2).contains(&kept), "kept {kept} areas for 2 permits");
        h.release_idle(); // hashes ran since the last call: kept
        assert_eq!(h.kept_work_areas(), kept);
        h.release_idle(); // none since: released
        assert_eq!(h.kept_work_areas(), 0);
        let wrong = SecretString::from("another".to_string());
        assert!(!h.verify(&wrong, Some(&stored)).await.unwrap().ok);
        assert!(
            !h.verify(&pw, None).await.unwrap().ok,
            "unknown user never matches"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_at_a_lower_priority_than_the_rest_of_the_process() {
        use rustix::process::getpriority_process;
        let h = hasher(1);
        let here = getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let there = h
            .run(|_| Ok(getpriority_process(Some(rustix::thread::gettid()))?))
            .await
            .unwrap();
        assert_eq!(there, (here + HASH_NICENESS).min(19), "nice here {here}");
        // The caller's own thread keeps its priority.
        assert_eq!(
            getpriority_process(Some(rustix::thread::gettid())).unwrap(),
            here
        );
    }

    #[tokio::test]
    async fn no_more_hashes_run_at_once_than_permits_even_when_callers_give_up() {
        use std::sync::atomic::AtomicUsize;
        use std::time::Duration;
        let h = hasher(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let job = |running: Arc<AtomicUsize>, most: Arc<AtomicUsize>| {
            move |_: &mut Vec<Block>| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(30));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        };
        // Callers that stop waiting at once (a client that hung up), then ones that wait.
        for _ in 0..4 {
            let _ = tokio::time::timeout(
                Duration::from_millis(1),
                h.run(job(running.clone(), most.clone())),
            )
            .await;
        }
        let waiting = (0..6).map(|_| h.run(job(running.clone(), most.clone())));
        for r in futures::future::join_all(waiting).await {
            r.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "at most 2 hashes at once");
    }

    /// A hash that waited too long for its turn is `Overloaded` (a 503), so a login that
    /// reserved its attempt reaches a verdict before the reservation expires.
    #[tokio::test(start_paused = true)]
    async fn a_hash_that_waits_too_long_is_overloaded() {
        let h = hasher(1);
        let busy = h.run(|_| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok(())
        });
        let waiting = h.run(|_| Ok(()));
        let (busy, waiting) = tokio::join!(busy, waiting);
        busy.unwrap();
        let err = waiting.unwrap_err();
        assert!(err.downcast_ref::<Overloaded>().is_some(), "{err:#}");
        let as_service: crate::service::Error = err.into();
        assert_eq!(as_service.code(), "unavailable");
    }

    #[tokio::test]
    async fn a_panicking_hash_is_an_error_and_the_threads_keep_working() {
        let h = hasher(1);
        let failed = h.run(|_| -> anyhow::Result<()> { panic!("boom") }).await;
        assert!(failed.is_err());
        let pw = SecretString::from("a password".to_string());
        let stored = h.hash(&pw).await.unwrap();
        assert!(h.verify(&pw, Some(&stored)).await.unwrap().ok);
    }
}
