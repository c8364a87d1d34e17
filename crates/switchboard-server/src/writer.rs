//! The store writer: one thread that owns writing, and commits in groups. Every op the core
//! emitted while the previous batch was being written and fsynced goes into the next
//! transaction; acknowledgements and deliveries wait for their batch to be durable.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shared::Shared;

/// How far the stored Lamport clock runs ahead of the clock (see `run`).
const CLOCK_LEASE: u64 = 100_000;

/// How long to wait before retrying a failed write. Ops stay queued, in order, meanwhile.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// How often the store's upkeep (the WAL checkpoint) runs.
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);

/// Runs the store's upkeep on a thread of its own until the writer stops.
pub(crate) fn spawn_maintenance(shared: Arc<Shared>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("store-upkeep".into())
        .spawn(move || {
            while !shared.writer_stop.load(Ordering::Acquire) {
                std::thread::sleep(MAINTAIN_EVERY);
                if let Err(e) = shared.store.maintain() {
                    tracing::warn!(error = %e, "store upkeep failed");
                }
            }
        })
        .expect("spawn store upkeep thread")
}

pub(crate) fn spawn(shared: Arc<Shared>, doorbell: Receiver<()>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || run(&shared, &doorbell))
        .expect("spawn store writer thread")
}

fn run(shared: &Shared, doorbell: &Receiver<()>) {
    let mut batch = Vec::new();
    let mut clock = 0;
    loop {
        let mut clock_only = false;
        if batch.is_empty() {
            let mut core = shared.core.lock().expect("core lock");
            core.take_ops_into(&mut batch);
            // A lease: the clock stored runs ahead of the clock, so that a clock heard from
            // peers is covered by the last store for a while. A restarted node starts from
            // the lease, above anything it vouched for; its stamps jump, which orders
            // nothing wrongly.
            clock = core.clock().saturating_add(CLOCK_LEASE);
            // The clock moved past the lease with no op to store (heard from peers): store
            // it alone, for the node vouches only for a stored clock. A node that receives
            // only some rooms (on NATS) may have nothing else to write for a long time.
            clock_only = batch.is_empty() && core.clock_unsaved();
        }
        if batch.is_empty() && !clock_only {
            if shared.writer_stop.load(Ordering::Acquire) {
                return;
            }
            // Wait for the doorbell; wake now and then to notice a stop request.
            let _ = doorbell.recv_timeout(Duration::from_millis(200));
            continue;
        }
        let started = Instant::now();
        match shared.store.append(&batch, clock) {
            Ok(()) => {
                let m = &shared.metrics;
                m.observe_store_write(started.elapsed().as_secs_f64());
                m.store_batches.fetch_add(1, Ordering::Relaxed);
                m.store_ops.fetch_add(batch.len() as u64, Ordering::Relaxed);
                let count = batch.len();
                // Our own ops go to every peer once they are durable here. With no link open
                // there is nobody to serialise them for: a link that opens later catches up
                // from the store, where they already are.
                let own: Vec<_> = if shared.cluster.has_links() {
                    batch
                        .drain(..)
                        .filter(|op| op.meta.origin == shared.cfg.node_name)
                        .collect()
                } else {
                    batch.clear();
                    Vec::new()
                };
                // Queued to the links before `committed`: a clock read after it vouches for
                // these ops, so they must already be ahead of it on every link.
                if !own.is_empty() {
                    shared.cluster.send_own_ops(own);
                }
                shared.run(|core, out| core.committed(count, clock, out));
            }
            Err(e) => {
                shared.metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, ops = batch.len(), "store write failed; retrying");
                std::thread::sleep(RETRY_AFTER);
            }
        }
    }
}
