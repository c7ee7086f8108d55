//! TEMPORARY compile stub: the real module is being written (helper) and replaces this file.
use linewatch_report::{AlertKind, AlertRecord};
use std::time::{Duration, UNIX_EPOCH};
#[derive(Debug, Clone)]
pub enum Threshold { Fixed(f64), Baseline { learn_secs: u32, margin_pct: f64 } }
#[derive(Debug, Clone)]
pub struct AlertConfig { pub window_secs: u32, pub threshold: Threshold }
#[derive(Debug, Clone)]
pub enum AlertTransition { Raised(AlertRecord), Recovered(AlertRecord) }
#[derive(Debug)]
pub struct AlertState { cfg: AlertConfig, counts: std::collections::VecDeque<(u64,u64)>, active: bool, history: Vec<AlertRecord> }
impl AlertState {
    pub fn new(cfg: AlertConfig) -> Self { AlertState { cfg, counts: Default::default(), active: false, history: vec![] } }
    pub fn close_second(&mut self, second: u64, requests: u64, mut on: impl FnMut(AlertTransition)) {
        self.counts.push_back((second, requests));
        let w = u64::from(self.cfg.window_secs);
        while self.counts.front().is_some_and(|(s, _)| *s + w <= second) { self.counts.pop_front(); }
        let rate = self.window_rate();
        let th = match self.cfg.threshold { Threshold::Fixed(t) => t, Threshold::Baseline{..} => 10.0 };
        let at = UNIX_EPOCH + Duration::from_secs(second);
        if !self.active && rate > th { self.active = true; let r = AlertRecord{kind: AlertKind::HighTraffic, triggered_at: at, value: rate, threshold: th, recovered_at: None, recovered_value: None}; self.history.push(r.clone()); on(AlertTransition::Raised(r)); }
        else if self.active && rate <= th { self.active = false; if let Some(r) = self.history.last_mut() { r.recovered_at = Some(at); r.recovered_value = Some(rate); on(AlertTransition::Recovered(r.clone())); } }
    }
    pub fn window_rate(&self) -> f64 { self.counts.iter().map(|c| c.1).sum::<u64>() as f64 / f64::from(self.cfg.window_secs) }
    pub fn threshold(&self) -> Option<f64> { None }
    pub fn is_active(&self) -> bool { self.active }
    pub fn history(&self) -> &[AlertRecord] { &self.history }
    pub fn dropped_history(&self) -> u64 { 0 }
}
