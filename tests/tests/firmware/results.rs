//! The results: the host's, from the same workload code, and the device's, parsed from what it
//! prints.

use crate::workload::Density;
use crate::{errtext, workload};
use flow_core::{Error, Model};
use std::collections::BTreeMap;
use std::fmt::Write as _;

// --- results: the host's, and the device's as printed ----------------------------------------

/// A result as printed: `f32` bits, or the text of a flow-core error.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Bits(Vec<u32>),
    Err(String),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Bits(b) => {
                let v: Vec<String> = b
                    .iter()
                    .map(|b| format!("{:e} (0x{b:08x})", f32::from_bits(*b)))
                    .collect();
                write!(f, "[{}]", v.join(", "))
            }
            Val::Err(e) => write!(f, "error \"{e}\""),
        }
    }
}

/// How the firmware prints `e` (built without its feature `error-text`): `E<n> …`.
pub(crate) fn device_code(e: &Error) -> String {
    let mut s = String::new();
    errtext::code(&mut s, e);
    s
}

/// `tag` and indices of a result line.
pub(crate) type Key = (String, Vec<usize>);

/// The host's results, from the same `workload::run` as the device's.
#[derive(Default)]
pub(crate) struct Host {
    pub(crate) results: BTreeMap<Key, (Vec<f32>, Vec<f32>, Val)>,
    pub(crate) threshold: Option<Option<(u32, u32)>>,
    pub(crate) flagged: Option<(usize, usize)>,
}

impl workload::Report for Host {
    fn result(
        &mut self,
        tag: &'static str,
        idx: &[usize],
        input: [&[f32]; 2],
        out: Result<&[f32], &Error>,
    ) {
        let val = match out {
            Ok(v) => Val::Bits(v.iter().map(|x| x.to_bits()).collect()),
            Err(e) => Val::Err(device_code(e)),
        };
        let key = (tag.to_string(), idx.to_vec());
        let old = self
            .results
            .insert(key, (input[0].to_vec(), input[1].to_vec(), val));
        assert!(old.is_none(), "duplicate result {tag} {idx:?}");
    }

    fn threshold(&mut self, t: Option<(f32, f32)>) {
        self.threshold = Some(t.map(|(q, lp)| (q.to_bits(), lp.to_bits())));
    }

    fn flagged(&mut self, n: usize, m: usize) {
        self.flagged = Some((n, m));
    }
}

/// The device's output, parsed.
#[derive(Default, Debug)]
pub(crate) struct Output {
    pub(crate) results: BTreeMap<Key, Val>,
    pub(crate) threshold: Option<Option<(u32, u32)>>,
    pub(crate) flagged: Option<(usize, usize)>,
    pub(crate) calib: Vec<(u64, u64)>,
    pub(crate) metrics: BTreeMap<String, u64>,
    pub(crate) geometry: Option<String>,
    pub(crate) load_error: Option<String>,
    pub(crate) done: bool,
}

pub(crate) fn hex(s: &str) -> u32 {
    u32::from_str_radix(s, 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

pub(crate) fn num<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse()
        .unwrap_or_else(|e| panic!("bad number {s:?}: {e:?}"))
}

/// How many indices a result line of `tag` has (0: not a result line).
pub(crate) fn indices(tag: &str) -> usize {
    match tag {
        "lp" | "lp_raw" | "sample" | "sample_raw" | "flag" => 1,
        "clp" | "csample" => 2,
        _ => 0,
    }
}

pub(crate) fn parse(stdout: &str) -> Output {
    let mut o = Output::default();
    for line in stdout.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(&tag) = w.first() else { continue };
        let n = indices(tag);
        if n > 0 && w.len() > n {
            let idx = w[1..=n].iter().map(|s| num(s)).collect();
            let val = match &w[n + 1..] {
                ["err", msg @ ..] => Val::Err(msg.join(" ")),
                bits => Val::Bits(bits.iter().map(|b| hex(b)).collect()),
            };
            let old = o.results.insert((tag.to_string(), idx), val);
            assert!(old.is_none(), "device printed twice: {line}");
            continue;
        }
        match w.as_slice() {
            ["threshold", "none"] => o.threshold = Some(None),
            ["threshold", q, lp] => o.threshold = Some(Some((hex(q), hex(lp)))),
            ["flagged", n, "of", m] => o.flagged = Some((num(n), num(m))),
            ["calib", n, t] => o.calib.push((num(n), num(t))),
            ["geometry", ..] => o.geometry = Some(w[1..].join(" ")),
            ["load-error", ..] => {
                o.load_error = Some(line["load-error ".len().min(line.len())..].to_string())
            }
            ["done"] => o.done = true,
            [key, v] if v.parse::<u64>().is_ok() => {
                o.metrics.insert(key.to_string(), num(v));
            }
            _ => {}
        }
    }
    o
}

/// ULP distance of two finite `f32` (for messages only).
pub(crate) fn ulps(a: u32, b: u32) -> u64 {
    let key = |x: u32| {
        if x & 0x8000_0000 != 0 {
            -((x & 0x7FFF_FFFF) as i64)
        } else {
            x as i64
        }
    };
    (key(a) - key(b)).unsigned_abs()
}

/// Every difference between the device's results and the host's, one message each.
pub(crate) fn mismatches(machine: &str, out: &Output, host: &Host) -> Vec<String> {
    let mut bad = Vec::new();
    for ((tag, idx), (x, c, want)) in &host.results {
        let what = |x: &[f32], c: &[f32]| {
            let mut s = String::new();
            if !x.is_empty() {
                let _ = write!(s, " at x = {x:?}");
            }
            if !c.is_empty() {
                let _ = write!(s, " context {c:?}");
            }
            s
        };
        match out.results.get(&(tag.clone(), idx.clone())) {
            None => bad.push(format!(
                "{machine}: `{tag} {idx:?}`{} not printed (host {want})",
                what(x, c)
            )),
            Some(got) if got != want => {
                let d = match (got, want) {
                    (Val::Bits(a), Val::Bits(b)) if a.len() == b.len() => {
                        let u: Vec<u64> = a.iter().zip(b).map(|(a, b)| ulps(*a, *b)).collect();
                        format!(" ({u:?} ULP)")
                    }
                    _ => String::new(),
                };
                bad.push(format!(
                    "{machine}: `{tag} {idx:?}`{}: device {got}, host {want}{d}",
                    what(x, c)
                ));
            }
            Some(_) => {}
        }
    }
    for (tag, idx) in out.results.keys() {
        if !host.results.contains_key(&(tag.clone(), idx.clone())) {
            bad.push(format!(
                "{machine}: device printed `{tag} {idx:?}`, the host has no such result"
            ));
        }
    }
    if out.threshold != host.threshold {
        bad.push(format!(
            "{machine}: threshold: device {:?}, host {:?}",
            out.threshold, host.threshold
        ));
    }
    if out.flagged != host.flagged {
        bad.push(format!(
            "{machine}: flagged (n, of m): device {:?}, host {:?}",
            out.flagged, host.flagged
        ));
    }
    bad
}

/// Runs the workload on the host for `flow` with the stream the firmware uses.
pub(crate) fn host_results<const D: usize, const C: usize, F: Density<D, C>>(
    model: &Model<'_>,
    flow: &F,
    stream: Option<&[u8]>,
) -> Host {
    let mut h = Host::default();
    match stream {
        Some(bytes) => workload::run::<D, C, _, _>(
            model,
            flow,
            workload::FileStream::<D, C>::new(bytes),
            &mut h,
        ),
        None => workload::run::<D, C, _, _>(
            model,
            flow,
            workload::SampledStream::new(model, flow),
            &mut h,
        ),
    }
    h
}
