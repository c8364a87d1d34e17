//! The cluster simulator over many seeds. A failing seed replays exactly:
//! `SIM_SEED=1234 cargo test -p switchboard-sim`; `SIM_SEEDS=500` runs 500 seeds per test
//! instead of the default few dozen.

use switchboard_sim::{Faults, Sim};

/// The seeds to run: `SIM_SEED` alone if set, else `count` of them from `first` (or
/// `SIM_SEEDS` of them).
fn seeds(first: u64, count: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return vec![s.parse().expect("SIM_SEED is a number")];
    }
    let count =
        std::env::var("SIM_SEEDS").map_or(count, |n| n.parse().expect("SIM_SEEDS is a number"));
    (first..first + count).collect()
}

fn run(seed: u64, nodes: usize, steps: u64, faults: Faults) -> Sim {
    let mut sim = Sim::new(seed, nodes);
    sim.run(steps, faults);
    if let Err(e) = sim.check() {
        panic!("seed {seed} (replay: SIM_SEED={seed} cargo test -p switchboard-sim): {e}");
    }
    sim
}

#[test]
fn calm_network_converges_in_one_order() {
    for seed in seeds(0, 25) {
        let sim = run(seed, 3, 2_000, Faults::NONE);
        assert!(!sim.faulted);
    }
}

#[test]
fn lost_duplicated_and_reordered_frames_keep_one_order_and_lose_nothing() {
    for seed in seeds(2_000, 30) {
        let sim = run(seed, 3, 3_000, Faults::LOSSY);
        // No peer went down, so the checks held every session to history's order.
        assert!(!sim.faulted);
    }
}

#[test]
fn storms_of_every_fault_converge_without_loss() {
    for seed in seeds(1_000, 50) {
        run(seed, 3, 4_000, Faults::ALL);
    }
}

#[test]
fn five_nodes_with_every_fault() {
    for seed in seeds(5_000, 12) {
        run(seed, 5, 3_000, Faults::ALL);
    }
}

#[test]
fn a_seed_replays_exactly() {
    for seed in seeds(7_000, 3) {
        let (a, b) = (
            run(seed, 3, 3_000, Faults::ALL),
            run(seed, 3, 3_000, Faults::ALL),
        );
        assert_eq!(a.trace(), b.trace(), "seed {seed} ran two ways");
        assert_eq!(a.received, b.received, "seed {seed} delivered differently");
        let other = run(seed + 1, 3, 3_000, Faults::ALL);
        assert_ne!(
            a.trace(),
            other.trace(),
            "the trace does not tell runs apart"
        );
    }
}

#[test]
fn two_nodes_on_a_lossy_network_acknowledge_everything() {
    // With one peer, a lost report of what it stored has no second peer to make up for it.
    for seed in seeds(9_000, 25) {
        let sim = run(seed, 2, 3_000, Faults::LOSSY);
        assert!(!sim.faulted);
    }
}
