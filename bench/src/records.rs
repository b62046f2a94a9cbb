//! What the rounds measured: values and failures per case and server, the load before
//! each measurement, and notes for the report.
//!
//! Owns: the recorded data, in the order it was recorded (the report lists servers and
//! notes in that order, and ties between peers go to the one recorded first).

use crate::clock::log;
use crate::procstat::load1;

/// A map that remembers insertion order; the suite has a handful of keys per map.
#[derive(Debug, Clone)]
pub struct Ordered<V>(Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V: Default> Ordered<V> {
    pub fn entry(&mut self, key: &str) -> &mut V {
        let index = match self.0.iter().position(|(k, _)| k == key) {
            Some(index) => index,
            None => {
                self.0.push((key.to_owned(), V::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[index].1
    }
}

impl<V> Ordered<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> FromIterator<(String, V)> for Ordered<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Values of one case, by server.
pub type ByServer = Ordered<Vec<f64>>;

#[derive(Debug, Default)]
pub struct Records {
    /// case → server → one value per round (also `1a-drops`, `1a-pause`: per-round extras).
    pub results: Ordered<ByServer>,
    /// case → server → why each failed round failed.
    pub failures: Ordered<Ordered<Vec<String>>>,
    /// case → 1-minute load before each measurement.
    pub loads: Ordered<Vec<f64>>,
    /// case (or group, for an aborted group) → distinct notes.
    pub notes: Ordered<Vec<String>>,
}

impl Records {
    pub fn record(&mut self, case: &str, server: &str, value: f64) {
        self.results.entry(case).entry(server).push(value);
    }

    pub fn fail(&mut self, case: &str, server: &str, reason: String) {
        log!("  FAIL {case} {server}: {reason}");
        self.failures.entry(case).entry(server).push(reason);
    }

    pub fn note_load(&mut self, case: &str) {
        self.loads.entry(case).push(load1());
    }

    pub fn note(&mut self, case: &str, text: String) {
        let notes = self.notes.entry(case);
        if !notes.contains(&text) {
            notes.push(text);
        }
    }
}

/// The median as Python's `statistics.median` gives it (mean of the middle two for an
/// even count); 0 for no values.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn ordered_keeps_insertion_order_and_notes_stay_distinct() {
        let mut records = Records::default();
        records.results.entry("1a").entry("portapxe").push(1.0);
        records.results.entry("1a").entry("atftpd").push(2.0);
        records.results.entry("1a").entry("portapxe").push(3.0);
        let servers: Vec<&str> = records.results.get("1a").expect("recorded").iter().map(|(k, _)| k).collect();
        assert_eq!(servers, ["portapxe", "atftpd"]);
        assert_eq!(records.results.get("1a").and_then(|s| s.get("portapxe")), Some(&vec![1.0, 3.0]));
        records.note("5c", "x".into());
        records.note("5c", "x".into());
        assert_eq!(records.notes.get("5c").map(Vec::len), Some(1));
    }
}
