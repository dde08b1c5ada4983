//! The panic handler, the same on every runtime: prints `panic <file>:<line>` (the message
//! would need `core::fmt`) and fails the run.

use crate::errtext::Text;
use crate::out::Line;
use crate::rt::exit_failure;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut l = Line::start("panic");
    if let Some(loc) = info.location() {
        l.str(" ");
        l.str(loc.file());
        l.str(":");
        l.dec(loc.line());
    }
    l.send();
    exit_failure()
}
