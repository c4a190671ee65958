//! Faults drawn at given rates on the plugin endpoints, deterministic from a seed: what a rollout over thousands of
//! mini programs meets from WeChat on a bad day.

use serde::{Deserialize, Serialize};

use super::invalid::Invalid;
use super::seeded::Seeded;
use super::state::Fault;

/// How often plugin calls (`/wxa/plugin`, `/wxa/devplugin`) meet each fault, from one seed
/// ([`Emulator::set_fault_rates`](super::Emulator::set_fault_rates), `POST /__emulator/fault_rates`). Rates are
/// shares of calls from 0 to 1, together at most 1; a field left out of the JSON takes its default (no faults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRates {
    /// Answered an HTTP 5xx (500, 502, 503 or 504, a quarter each) without being processed.
    pub status_5xx: f64,
    /// Processed (the change made), then left unanswered: [`Fault::TimeoutAfterApply`] for `timeout_ms`.
    pub timeout_after_apply: f64,
    /// Answered WeChat's `-1` (system busy) without being processed.
    pub busy: f64,
    /// Where the draws start: the same seed gives the same faults to the same sequence of calls.
    pub seed: u64,
    /// How long a timed-out call's answer is held before its connection is closed, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for FaultRates {
    fn default() -> Self {
        FaultRates { status_5xx: 0.0, timeout_after_apply: 0.0, busy: 0.0, seed: 0, timeout_ms: 30_000 }
    }
}

impl FaultRates {
    /// Every rate a share from 0 to 1, together at most 1.
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        let rates =
            [("status_5xx", self.status_5xx), ("timeout_after_apply", self.timeout_after_apply), ("busy", self.busy)];
        if let Some((name, rate)) = rates.iter().find(|(_, r)| !(0.0..=1.0).contains(r)) {
            return Err(Invalid::Request(format!("fault rate {name} must be from 0 to 1, not {rate}")));
        }
        if rates.iter().map(|(_, r)| r).sum::<f64>() > 1.0 {
            return Err(Invalid::Request("fault rates must add up to at most 1".to_owned()));
        }
        Ok(())
    }
}

/// The rates and where their draws have got to: one uniform draw per plugin call.
#[derive(Debug)]
pub(crate) struct FaultDraws {
    rates: FaultRates,
    draws: Seeded,
}

const STATUSES_5XX: [u16; 4] = [500, 502, 503, 504];

impl FaultDraws {
    pub(crate) fn new(rates: FaultRates) -> FaultDraws {
        FaultDraws { rates, draws: Seeded::new(rates.seed) }
    }

    /// The next call's fault: the draw falls in the 5xx band, then the timeout band, then the busy band, or past them.
    pub(crate) fn draw(&mut self) -> Option<Fault> {
        let FaultRates { status_5xx, timeout_after_apply, busy, timeout_ms, .. } = self.rates;
        let u = self.draws.next_f64();
        if u < status_5xx {
            // Where the draw falls within the band picks the status, so each call still takes one draw.
            let which = (u / status_5xx * STATUSES_5XX.len() as f64) as usize;
            return Some(Fault::Status { status: STATUSES_5XX[which.min(STATUSES_5XX.len() - 1)] });
        }
        let u = u - status_5xx;
        if u < timeout_after_apply {
            return Some(Fault::TimeoutAfterApply { ms: timeout_ms });
        }
        (u - timeout_after_apply < busy).then_some(Fault::Errcode { errcode: -1, errmsg: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_out_of_range_or_adding_past_one_are_refused() {
        let rates = |status_5xx, busy| FaultRates { status_5xx, busy, ..FaultRates::default() };
        assert!(rates(0.5, 0.5).validate().is_ok());
        assert!(rates(0.6, 0.5).validate().unwrap_err().to_string().contains("at most 1"));
        assert!(rates(-0.1, 0.0).validate().unwrap_err().to_string().contains("status_5xx"));
        assert!(rates(f64::NAN, 0.0).validate().is_err());
    }

    #[test]
    fn a_rate_of_one_always_draws_its_fault_and_zero_never_does() {
        let mut all = FaultDraws::new(FaultRates { busy: 1.0, ..FaultRates::default() });
        assert!((0..100).all(|_| all.draw() == Some(Fault::Errcode { errcode: -1, errmsg: None })));
        let mut none = FaultDraws::new(FaultRates::default());
        assert!((0..100).all(|_| none.draw().is_none()));
    }
}
