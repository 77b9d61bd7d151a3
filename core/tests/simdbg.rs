use minima_core::sim::{run, Config, Partition};
#[test]
fn dbg_partition() {
    let cfg = Config { nodes: 12, phones: 0.34, hours: 1.5, seed: 2002, payments_per_hour: 4.0, phone_wake_every_s: 600,
        partitions: vec![Partition { from_h: 0.25, until_h: 1.0, fraction: 0.3 }], log: Some("/tmp/simdbg/p.log".into()), ..Config::default() };
    let r = run(&cfg).unwrap();
    eprintln!("{r:?}");
}
