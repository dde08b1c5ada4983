//! The clock the trainer's timings read.

/// CPU time of the calling thread in seconds (Linux: `/proc/thread-self/schedstat`, ns
/// resolution); `None` elsewhere. Unlike wall time it does not count time the thread waited
/// for a core, so timings stay comparable on a busy machine.
pub fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}
