//! The full-covariance Gaussian mixture baseline (`common/gmm.rs`, shared with the `stream`
//! bench) as a [`Fitted`] density of the cross-validation.

use crate::cv::Fitted;
pub(crate) use crate::mixture::Gmm;
use flow_train::Dataset;

impl Fitted for Gmm {
    fn log_probs(&self, x: &Dataset) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let p: Vec<f64> = x.row(i).iter().map(|&v| v as f64).collect();
                self.log_prob(&p)
            })
            .collect()
    }
}
