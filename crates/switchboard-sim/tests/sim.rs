//! The cluster simulator over many seeds. A failing seed replays exactly:
//! `SIM_SEED=1234 cargo test -p switchboard-sim`.

use switchboard_sim::{Faults, Sim};

fn seeds(default: std::ops::Range<u64>) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => default.collect(),
    }
}

#[test]
fn calm_network_converges_in_one_order() {
    for seed in seeds(0..40) {
        let mut sim = Sim::new(seed, 3);
        sim.run(2_000, Faults::NONE);
        if let Err(e) = sim.check() {
            panic!("seed {seed}: {e}");
        }
    }
}

#[test]
fn storms_of_breaks_partitions_crashes_and_duplicates_converge_without_loss() {
    for seed in seeds(1_000..1_080) {
        let mut sim = Sim::new(seed, 3);
        sim.run(4_000, Faults::ALL);
        if let Err(e) = sim.check() {
            panic!("seed {seed}: {e}");
        }
    }
}

#[test]
fn five_nodes_with_faults() {
    for seed in seeds(5_000..5_020) {
        let mut sim = Sim::new(seed, 5);
        sim.run(3_000, Faults::ALL);
        if let Err(e) = sim.check() {
            panic!("seed {seed}: {e}");
        }
    }
}
