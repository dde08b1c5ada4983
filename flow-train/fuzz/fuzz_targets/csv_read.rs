//! Fuzzes the CSV readers users feed by hand: the command line's (`src/cli/table.rs`, compiled
//! into this target as it is) and the library's `Dataset::from_csv`. Any byte string is read;
//! whatever reads is selected column by column as numbers, the way `fit`, `eval` and `plot`
//! do. Nothing may panic; an error must be words naming the input, never empty.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/cli/decimal.rs"]
mod decimal;
#[allow(dead_code)]
#[path = "../../src/cli/files.rs"]
mod files;
#[allow(dead_code)]
#[path = "../../src/cli/table.rs"]
mod table;

fuzz_target!(|data: &[u8]| {
    match table::parse_csv(data, "input.csv") {
        Ok(t) => {
            let w = t.columns.len();
            assert!(w > 0 && t.rows() > 0);
            for j in 0..w {
                let _ = t.index(&t.columns[j]).unwrap();
                let _ = t.text(j);
                if let Ok(v) = t.select(&[j]) {
                    assert_eq!(v.len(), t.rows());
                    assert!(v.iter().all(|x| x.is_finite()));
                }
            }
            if let Ok(v) = t.select(&(0..w).collect::<Vec<_>>()) {
                assert_eq!(v.len(), t.rows() * w);
            }
            for i in 0..t.rows() {
                assert!(!t.place(i).is_empty());
            }
        }
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(msg.starts_with("input.csv"), "{msg}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match flow_train::Dataset::from_csv(text) {
            Ok(d) => assert!(d.values().iter().all(|x| x.is_finite())),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
