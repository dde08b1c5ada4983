//! The firmware's error texts and codes against flow-core's.

use crate::{errtext, shown};
use flow_core::model::FlowKind;
use flow_core::{Capacity, Error, Feature, FormatError, LayerError};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::*;

// --- the firmware's error texts --------------------------------------------------------------------

impl errtext::Text for String {
    fn str(&mut self, s: &str) {
        self.push_str(s);
    }
    fn dec(&mut self, v: u32) {
        let _ = write!(self, "{v}");
    }
    fn hex(&mut self, v: u32) {
        let _ = write!(self, "{v:#010x}");
    }
}

#[test]
fn error_texts_equal_flow_core_display() {
    let kinds = [FlowKind::Plain, FlowKind::Conditional, FlowKind::Joint];
    let mut errors = vec![
        Error::NonFiniteInput,
        Error::Numerical,
        Error::OutOfSupport,
        Error::DimensionMismatch {
            expected: 2,
            found: 17,
        },
        Error::ParameterCount {
            expected: 1846,
            found: 0,
        },
        Error::NonFiniteParameter,
    ];
    for what in [
        Capacity::Layers,
        Capacity::Hidden,
        Capacity::Bins,
        Capacity::HiddenLayers,
    ] {
        errors.push(Error::Capacity {
            what,
            needed: 64,
            limit: 20,
        });
    }
    for l in [
        LayerError::Bins,
        LayerError::Bound,
        LayerError::Split,
        LayerError::Permutation,
        LayerError::Scale,
        LayerError::ZeroDim,
        LayerError::HypernetShape,
        LayerError::Context,
        LayerError::Tables,
    ] {
        errors.push(Error::InvalidLayer(l));
    }
    for f in [
        Feature::Affine,
        Feature::Exp,
        Feature::Spline,
        Feature::Coupling,
        Feature::Permute,
        Feature::ConditionalSpline,
        Feature::Quadratic,
    ] {
        errors.push(Error::Unsupported(f));
    }
    let mut formats = vec![
        FormatError::Truncated,
        FormatError::Magic,
        FormatError::Version {
            found: 65535,
            supported: 1,
        },
        FormatError::Checksum {
            stored: 0x0012_abcd,
            computed: 0xffff_0000,
        },
        FormatError::Malformed,
        FormatError::TrailingBytes,
        FormatError::LayerCount,
        FormatError::Metadata,
        FormatError::BufferTooSmall,
    ];
    for expected in kinds {
        for found in kinds {
            formats.push(FormatError::Kind { expected, found });
        }
    }
    errors.extend(formats.into_iter().map(Error::Format));
    let mut codes = BTreeMap::new();
    for e in errors {
        let mut s = String::new();
        errtext::error(&mut s, &e);
        assert_eq!(s, e.to_string(), "{e:?}");
        // The example's text (flow-firmware-example/src/text.rs: the same pieces, its own digits).
        assert_eq!(shown(&e), s, "the example's text of {e:?}");
        // The codes tell every error apart, and are what the table in errtext.rs says.
        let c = device_code(&e);
        assert!(!c.starts_with("E0"), "{e:?} has no code");
        if let Some(other) = codes.insert(c.clone(), e) {
            panic!("{e:?} and {other:?} have the same code {c}");
        }
    }
    assert_eq!(
        device_code(&Error::Format(FormatError::Checksum {
            stored: 1,
            computed: 2
        })),
        "E9 3 1 2"
    );
    assert_eq!(
        device_code(&Error::Capacity {
            what: Capacity::Bins,
            needed: 64,
            limit: 16
        }),
        "E5 2 64 16"
    );
}
