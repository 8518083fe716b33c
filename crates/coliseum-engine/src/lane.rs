//! A lane of CPU-heavy read jobs: a queue, and up to a fixed number of
//! threads of the blocking pool that take its jobs one after another,
//! started when jobs arrive and given back when the queue is empty.
//!
//! The threads take the next job themselves as soon as one ends. A lane
//! of permits handed the next job's permit to its waiting request, whose
//! task then had to be polled by a request worker before the job could
//! start: with hundreds of connections the workers' queues are long, and
//! the permit sat idle for about as long as a job takes. Under the cold
//! reads the builds' lane then used about half of what its threads could
//! (BENCHMARKS.md, twentieth step).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use coliseum_store::StoreError;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads taking jobs now.
    running: usize,
}

pub(crate) struct Lane {
    name: &'static str,
    threads: usize,
    queue: Arc<Mutex<Queue>>,
    /// How long jobs waited to start, made at the first job: the metrics
    /// recorder may be installed after the reads are.
    waited: std::sync::OnceLock<metrics::Histogram>,
    /// Jobs started, for tests to count.
    #[cfg(test)]
    pub(crate) started: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("name", &self.name)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Lane {
    pub(crate) fn new(threads: usize, name: &'static str) -> Self {
        Self {
            name,
            threads: threads.max(1),
            queue: Arc::default(),
            waited: std::sync::OnceLock::new(),
            #[cfg(test)]
            started: Arc::default(),
        }
    }

    /// Runs `job` on one of the lane's threads once the jobs queued before
    /// it have started. A job whose reader gave up waiting is dropped
    /// unrun when a thread reaches it; one that panics fails its reader
    /// alone.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let queued = std::time::Instant::now();
        let waited = self
            .waited
            .get_or_init(|| metrics::histogram!("coliseum_read_core_wait_seconds", "lane" => self.name))
            .clone();
        #[cfg(test)]
        let started = self.started.clone();
        self.submit(Box::new(move || {
            if done.is_closed() {
                return;
            }
            waited.record(queued.elapsed());
            #[cfg(test)]
            started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = done.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)));
        }));
        match outcome.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(StoreError::Internal(format!("a {} job panicked", self.name))),
            Err(_) => Err(StoreError::Internal(format!("the {} lane is closed", self.name))),
        }
    }

    /// Queues `job`, and starts a thread for the queue while fewer than
    /// the lane's are taking jobs.
    fn submit(&self, job: Job) {
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.jobs.push_back(job);
            let start = queue.running < self.threads;
            queue.running += usize::from(start);
            start
        };
        if start {
            let taker = Taker {
                queue: self.queue.clone(),
                done: false,
            };
            tokio::task::spawn_blocking(move || taker.take_jobs());
        }
    }

    /// Keeps every thread of the lane busy until the returned sender is
    /// dropped, and returns once they all are.
    #[cfg(test)]
    pub(crate) async fn hold(&self) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Arc::new(Mutex::new(held));
        let (busy, mut all_busy) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..self.threads {
            let (held, busy) = (held.clone(), busy.clone());
            self.submit(Box::new(move || {
                let _ = busy.send(());
                // Each holder waits for the sender to go: `recv` fails then.
                let held = held.lock().unwrap_or_else(|p| p.into_inner());
                while held.recv().is_ok() {}
            }));
        }
        for _ in 0..self.threads {
            all_busy.recv().await.expect("every holder starts");
        }
        release
    }
}

/// A lane's thread, counted in [`Queue::running`] from before it starts.
struct Taker {
    queue: Arc<Mutex<Queue>>,
    /// It found the queue empty and stopped counting itself.
    done: bool,
}

impl Taker {
    /// Takes queued jobs until there are none. The last look and the count
    /// change under one lock: a job queued meanwhile starts a thread.
    fn take_jobs(mut self) {
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                match queue.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        queue.running -= 1;
                        self.done = true;
                        return;
                    }
                }
            };
            job();
        }
    }
}

impl Drop for Taker {
    /// A thread that never started (the runtime was shutting down) or
    /// whose job panicked stops counting itself here. When it was the last,
    /// the queued jobs are dropped, so their readers hear that the lane is
    /// closed instead of waiting for a thread that never comes.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let stranded = {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.running -= 1;
            if queue.running == 0 {
                std::mem::take(&mut queue.jobs)
            } else {
                VecDeque::new()
            }
        };
        drop(stranded);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_next_job_starts_when_one_ends_without_its_reader_being_polled() {
        let lane = Lane::new(1, "build");
        let (go, told) = std::sync::mpsc::channel();
        let first = lane.run(move || told.recv().expect("the test says when"));
        let (ran, finished) = std::sync::mpsc::channel();
        let second = lane.run(move || ran.send(()).expect("the test waits"));
        tokio::pin!(first, second);
        // Each polled once, to queue its job, and never again until the
        // end: as tasks waiting for a busy request worker.
        for job in [first.as_mut().poll_once(), second.as_mut().poll_once()] {
            assert!(job.is_pending());
        }
        go.send(()).expect("the first job listens");
        finished
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the second job ran without its reader being polled");
        assert!(first.await.is_ok() && second.await.is_ok());
        assert_eq!(lane.started.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_job_whose_reader_gave_up_is_not_run_and_a_panic_fails_its_reader_alone() {
        let lane = Lane::new(1, "build");
        let release = lane.hold().await;
        let held_at = lane.started.load(Ordering::Relaxed);
        let mut given_up = Box::pin(lane.run(|| ()));
        assert!(given_up.as_mut().poll_once().is_pending());
        drop(given_up);
        let panics = lane.run(|| panic!("a job that fails"));
        let after = lane.run(|| 7);
        drop(release);
        assert!(panics.await.is_err());
        assert_eq!(after.await.expect("the thread lives on"), 7);
        assert_eq!(
            lane.started.load(Ordering::Relaxed) - held_at,
            2,
            "the job nobody waits for never started"
        );
    }

    #[test]
    fn a_reader_hears_the_lane_is_closed_when_its_runtime_shut_down() {
        let gone = tokio::runtime::Runtime::new().expect("a runtime");
        let handle = gone.handle().clone();
        gone.shutdown_background();
        let lane = Lane::new(2, "build");
        let mut read = Box::pin(lane.run(|| 7));
        // The lane's thread is asked of the runtime that is gone.
        let _gone = handle.enter();
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            matches!(
                std::future::Future::poll(read.as_mut(), &mut cx),
                std::task::Poll::Ready(Err(_))
            ),
            "answered at once, not left waiting for a thread that never comes"
        );
        assert_eq!(lane.queue.lock().expect("queue").running, 0);
    }

    /// Polls a pinned future once, with a waker that does nothing.
    trait PollOnce {
        fn poll_once(self) -> std::task::Poll<()>;
    }

    impl<F: std::future::Future> PollOnce for std::pin::Pin<&mut F> {
        fn poll_once(self) -> std::task::Poll<()> {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            std::future::Future::poll(self, &mut cx).map(|_| ())
        }
    }
}
