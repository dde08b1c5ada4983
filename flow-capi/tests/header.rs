//! The committed header is the generated one: `include/flow.h` equals what `build.rs`
//! writes for the default capacities (regenerate it with
//! `cargo run -p flow-capi --example header > flow-capi/include/flow.h`, without any
//! `FLOW_CAPI_*` variable set).

#[test]
fn committed_header_equals_generated() {
    let committed = include_str!("../include/flow.h");
    assert!(
        committed == flow_capi::DEFAULT_HEADER,
        "flow-capi/include/flow.h differs from the generated header: regenerate it with \
         `cargo run -p flow-capi --example header > flow-capi/include/flow.h`"
    );
}

/// The header's numbers are the library's: capacities and `flow_model`'s size for this
/// target's pointer width.
#[test]
fn header_states_this_build() {
    let h = flow_capi::HEADER;
    for (name, v) in [
        ("FLOW_MAX_DIM", flow_capi::MAX_DIM),
        ("FLOW_MAX_CONTEXT", flow_capi::MAX_CONTEXT),
        ("FLOW_MAX_LAYERS", flow_capi::MAX_LAYERS),
        ("FLOW_MAX_HIDDEN", flow_capi::MAX_HIDDEN),
        ("FLOW_MAX_BINS", flow_capi::MAX_BINS),
    ] {
        assert!(h.contains(&format!("#define {name} {v}\n")), "{name} {v}");
    }
    let size = std::mem::size_of::<flow_capi::flow_model>();
    assert!(
        h.contains(&format!("#define FLOW_MODEL_SIZE {size}\n")),
        "{size}"
    );
}
