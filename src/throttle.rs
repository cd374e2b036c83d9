//! Failed logins, counted so that guessing is slow: per (client id or username, source
//! address) and per source address. Each count drains at its budget per window; a request
//! whose counts are full is refused before any hashing. An attempt is counted when it
//! starts, so that concurrent guesses share the budget, and given back if it succeeds
//! (clearing its own (name, address) count) or could not be tried. One address's failures
//! never refuse another address.
//!
//! Counters live in two tables of a fixed size: a spray of random names can only make the
//! tables forget their idlest counters, never grow them.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::settings::LoginSettings;

/// The longest name a counter keys on, in bytes; longer names are cut (and are not
/// anyone's username).
const NAME_KEY_MAX_BYTES: usize = 256;

/// Where a request comes from, as counted: an IPv4 address, or an IPv6 address by its /64
/// (what one host is usually given).
pub fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
        v4 => v4,
    }
}

/// Refused: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

pub struct LoginThrottle {
    names: Mutex<Table<(String, IpAddr)>>,
    addresses: Mutex<Table<IpAddr>>,
}

impl LoginThrottle {
    pub fn new(settings: &LoginSettings) -> Self {
        let window = Duration::from_secs(settings.window_s);
        Self {
            names: Mutex::new(Table::new(
                settings.failures_per_name_max,
                window,
                settings.counters_max,
            )),
            addresses: Mutex::new(Table::new(
                settings.failures_per_address_max,
                window,
                settings.counters_max,
            )),
        }
    }

    /// Starts a login as `name` from `address`: refused when either count is full, and
    /// otherwise counted as a failure until [`Self::succeeded`] or [`Self::not_tried`]
    /// says it was not one.
    pub fn attempt(&self, name: &str, address: IpAddr) -> Result<(), RetryAfter> {
        let now = Instant::now();
        let address = address_key(address);
        let key = (name_key(name), address);
        // Both tables at once (always in this order), so that concurrent attempts see
        // each other's counts.
        let mut addresses = lock(&self.addresses);
        let mut names = lock(&self.names);
        addresses.check(&address, now)?;
        names.check(&key, now)?;
        addresses.add(address, now);
        names.add(key, now);
        Ok(())
    }

    /// The attempt succeeded: its address gets it back, and its name starts afresh.
    pub fn succeeded(&self, name: &str, address: IpAddr) {
        let address = address_key(address);
        lock(&self.addresses).give_back(&address, Instant::now());
        lock(&self.names).forget(&(name_key(name), address));
    }

    /// The attempt was not decided (the hashers were busy, or the service failed).
    pub fn not_tried(&self, name: &str, address: IpAddr) {
        let now = Instant::now();
        let address = address_key(address);
        lock(&self.addresses).give_back(&address, now);
        lock(&self.names).give_back(&(name_key(name), address), now);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn name_key(name: &str) -> String {
    let mut end = name.len().min(NAME_KEY_MAX_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_lowercase()
}

/// Counts that drain at `max` per `window`, at most `counters_max` of them.
struct Table<K> {
    counts: HashMap<K, Count>,
    max: f64,
    per_second: f64,
    counters_max: usize,
}

#[derive(Clone, Copy)]
struct Count {
    level: f64,
    at: Instant,
}

impl Count {
    fn drained(self, now: Instant, per_second: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.level - elapsed * per_second).max(0.0)
    }
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(max: u32, window: Duration, counters_max: usize) -> Self {
        Self {
            counts: HashMap::new(),
            max: f64::from(max),
            per_second: f64::from(max) / window.as_secs_f64(),
            counters_max,
        }
    }

    fn check(&self, key: &K, now: Instant) -> Result<(), RetryAfter> {
        let Some(count) = self.counts.get(key) else {
            return Ok(());
        };
        let level = count.drained(now, self.per_second);
        if level + 1.0 <= self.max {
            return Ok(());
        }
        // Until one more failure fits.
        let wait_s = (level + 1.0 - self.max) / self.per_second;
        Err(RetryAfter(wait_s.ceil().max(1.0) as u64))
    }

    fn add(&mut self, key: K, now: Instant) {
        if !self.counts.contains_key(&key) && self.counts.len() >= self.counters_max {
            self.evict(now);
        }
        let count = self.counts.entry(key).or_insert(Count {
            level: 0.0,
            at: now,
        });
        count.level = count.drained(now, self.per_second) + 1.0;
        count.at = now;
    }

    fn forget(&mut self, key: &K) {
        self.counts.remove(key);
    }

    fn give_back(&mut self, key: &K, now: Instant) {
        if let Some(count) = self.counts.get_mut(key) {
            count.level = (count.drained(now, self.per_second) - 1.0).max(0.0);
            count.at = now;
        }
    }

    /// Makes room: every drained count goes, or else the one idle longest.
    fn evict(&mut self, now: Instant) {
        let per_second = self.per_second;
        self.counts
            .retain(|_, count| count.drained(now, per_second) > 0.0);
        if self.counts.len() < self.counters_max {
            return;
        }
        let idlest = self
            .counts
            .iter()
            .min_by_key(|(_, count)| count.at)
            .map(|(key, _)| key.clone());
        if let Some(key) = idlest {
            self.counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_name: u32, per_address: u32, counters_max: usize) -> LoginSettings {
        LoginSettings {
            failures_per_name_max: per_name,
            failures_per_address_max: per_address,
            window_s: 60,
            counters_max,
        }
    }

    const ONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const TWO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn a_name_is_refused_after_its_budget_from_that_address_only() {
        let throttle = LoginThrottle::new(&settings(3, 100, 100));
        for _ in 0..3 {
            assert_eq!(throttle.attempt("Tdurden", ONE), Ok(()));
        }
        let RetryAfter(wait_s) = throttle.attempt("TDURDEN", ONE).unwrap_err();
        assert!((1..=20).contains(&wait_s), "{wait_s}");
        assert_eq!(throttle.attempt("tdurden", TWO), Ok(()));
    }

    #[test]
    fn a_success_clears_its_own_count() {
        let throttle = LoginThrottle::new(&settings(2, 100, 100));
        throttle.attempt("tdurden", ONE).unwrap();
        throttle.attempt("tdurden", ONE).unwrap();
        throttle.succeeded("tdurden", ONE);
        assert_eq!(throttle.attempt("tdurden", ONE), Ok(()));
    }

    #[test]
    fn an_attempt_not_tried_is_given_back() {
        let throttle = LoginThrottle::new(&settings(1, 100, 100));
        throttle.attempt("tdurden", ONE).unwrap();
        assert!(
            throttle.attempt("tdurden", ONE).is_err(),
            "counted while it runs"
        );
        throttle.not_tried("tdurden", ONE);
        assert_eq!(throttle.attempt("tdurden", ONE), Ok(()));
    }

    #[test]
    fn an_address_spraying_names_is_refused_for_every_name() {
        let throttle = LoginThrottle::new(&settings(10, 5, 100));
        for i in 0..5 {
            throttle.attempt(&format!("user{i}"), ONE).unwrap();
        }
        assert!(throttle.attempt("someone-else", ONE).is_err());
        assert_eq!(throttle.attempt("someone-else", TWO), Ok(()));
    }

    #[test]
    fn the_tables_stay_within_their_size() {
        let throttle = LoginThrottle::new(&settings(10, 1_000_000, 50));
        for i in 0..1_000 {
            throttle.attempt(&format!("sprayed{i}"), ONE).unwrap();
        }
        assert!(lock(&throttle.names).counts.len() <= 50);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let two: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(one), address_key(two));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), ONE);
    }
}
