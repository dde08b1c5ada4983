//! Prints `flow.h` for this build's capacities (the `FLOW_CAPI_*` variables at build time).
fn main() {
    print!("{}", flow_capi::HEADER);
}
