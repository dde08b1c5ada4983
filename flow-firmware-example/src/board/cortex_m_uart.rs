//! What the Cortex-M boards with a UART share: the end of a run, the fault and panic
//! handlers (they print `error: …` on the UART and stop).

#[path = "cortex_m_faults.rs"]
mod faults;

/// Stops: the last line printed (`done` or `error: …`) says how the run went.
pub fn exit(_ok: bool) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
