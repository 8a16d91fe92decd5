//! The company's own traffic, every flow of it allowed by the example
//! policy.

use std::net::IpAddr;

use crate::hosts::*;
use crate::rng::Rng;
use crate::{Outcome, R, World, diurnal};

/// Per-run habits, drawn once per seed so runs differ in shape.
pub(crate) struct Company {
    /// Web requests per minute at the daily peak.
    peak_rpm: f64,
    /// Share of web clients that retry or give up (noisy clients).
    retry_rate: f64,
    /// How often the analytics client posts, in seconds.
    analytics_every_s: u64,
    /// Hour of the nightly backup.
    backup_hour: u32,
    /// Backup size in bytes.
    backup_bytes: u64,
    /// Hours of the OS update runs.
    update_hours: [u32; 2],
}

impl Company {
    pub fn new(rng: &mut Rng) -> Company {
        Company {
            peak_rpm: 40.0 + rng.f64() * 80.0,
            retry_rate: 0.01 + rng.f64() * 0.04,
            analytics_every_s: rng.range(20, 90),
            backup_hour: rng.range(0, 4) as u32,
            backup_bytes: rng.range(300, 1500) * 1_048_576,
            update_hours: [rng.range(5, 8) as u32, rng.range(16, 20) as u32],
        }
    }

    /// One hour of traffic starting at `t0`.
    pub fn hour(&mut self, w: &mut World<'_>, t0: i64) {
        let hod = (t0.rem_euclid(86_400_000) / 3_600_000) as u32;
        for minute in 0..60 {
            let t = t0 + minute * 60_000;
            let load = diurnal(f64::from(hod) + minute as f64 / 60.0);
            self.web(w, t, load);
            self.database(w, t, load);
            self.mail(w, t, load);
            self.analytics(w, t);
        }
        if hod == self.backup_hour {
            self.backup(w, t0);
        }
        if self.update_hours.contains(&hod) {
            self.updates(w, t0);
        }
        if (9..18).contains(&hod) && w.rng.chance(0.3) {
            self.admin(w, t0);
        }
    }

    fn web(&mut self, w: &mut World<'_>, t: i64, load: f64) {
        let n = w.rng.poisson(self.peak_rpm * load);
        for _ in 0..n {
            let at = t + w.rng.range(0, 59_999) as i64;
            // Heavy hitters: a few clients make many requests.
            let idx = if w.rng.chance(0.3) {
                w.rng.range(0, 40) as usize
            } else {
                w.rng.range(0, w.clients.len().saturating_sub(1) as u64) as usize
            };
            let client = w.clients.get(idx).copied().unwrap_or(WEB[0]);
            let web = *w.rng.pick(&WEB).unwrap_or(&WEB[0]);
            if w.rng.chance(self.retry_rate) {
                // The client gave up mid-handshake, then retried.
                w.probe(at, client, web, 443, Outcome::Unanswered, None);
            }
            let resp = w.rng.log_range(2_000, 400_000);
            let dur = w.rng.log_range(50, 20_000) as i64;
            w.tcp(
                at,
                R::Fix(dur as u64),
                client,
                web,
                443,
                R::Log(300, 4_000),
                R::Fix(resp),
                None,
            );
            // Most requests need the API.
            if w.rng.chance(0.8) {
                let api = *w.rng.pick(&API).unwrap_or(&API[0]);
                let d = w.rng.log_range(5, 2_000) as i64;
                w.tcp(
                    at + 5,
                    R::Fix(d as u64),
                    web,
                    api,
                    8080,
                    R::Log(200, 3_000),
                    R::Log(500, 60_000),
                    None,
                );
            }
        }
    }

    fn database(&mut self, w: &mut World<'_>, t: i64, load: f64) {
        for api in API {
            // Pooled connections: a few new ones a minute.
            for _ in 0..w.rng.poisson(1.0 + 3.0 * load) {
                let at = t + w.rng.range(0, 59_999) as i64;
                let d = w.rng.log_range(1_000, 300_000) as i64;
                w.tcp(
                    at,
                    R::Fix(d as u64),
                    api,
                    DB,
                    5432,
                    R::Log(2_000, 200_000),
                    R::Log(5_000, 2_000_000),
                    None,
                );
            }
        }
        if w.rng.chance(0.25) {
            let at = t + w.rng.range(0, 59_999) as i64;
            w.tcp(
                at,
                R::Fix(800),
                NOTIFIER,
                DB,
                5432,
                R::Log(500, 5_000),
                R::Log(2_000, 80_000),
                None,
            );
        }
    }

    fn mail(&mut self, w: &mut World<'_>, t: i64, load: f64) {
        for _ in 0..w.rng.poisson(4.0 * load) {
            let at = t + w.rng.range(0, 59_999) as i64;
            let ip = w.resolve(NOTIFIER, "smtp.mailer.example", &[MAILER_SMTP], at);
            w.tcp(
                at,
                R::Log(300, 5_000),
                NOTIFIER,
                ip,
                587,
                R::Log(8_000, 250_000),
                R::Log(400, 2_000),
                None,
            );
        }
        if w.rng.chance(0.5 * load) {
            let at = t + w.rng.range(0, 59_999) as i64;
            let ip = w.resolve(NOTIFIER, "api.mailer.example", &[MAILER_API], at);
            w.tcp(
                at,
                R::Fix(400),
                NOTIFIER,
                ip,
                443,
                R::Log(500, 4_000),
                R::Log(500, 8_000),
                None,
            );
        }
        // Bounce and complaint webhooks from the vendor's senders.
        for _ in 0..w.rng.poisson(1.2 * load) {
            let at = t + w.rng.range(0, 59_999) as i64;
            let sender = v4(198, 51, 100, 60 + w.rng.range(0, 9) as u8);
            w.tcp(
                at,
                R::Fix(300),
                sender,
                NOTIFIER,
                443,
                R::Log(800, 6_000),
                R::Fix(300),
                None,
            );
        }
    }

    fn analytics(&mut self, w: &mut World<'_>, t: i64) {
        let every = self.analytics_every_s as i64 * 1000;
        for (i, api) in API.iter().enumerate() {
            let mut at = t + (i as i64 * 7_919) % every;
            while at < t + 60_000 {
                let jittered = at + w.rng.range(0, 3_000) as i64;
                let ip = w.resolve(*api, "ingest.metrics.example", &ANALYTICS, jittered);
                w.tcp(
                    jittered,
                    R::Fix(200),
                    *api,
                    ip,
                    443,
                    R::Log(1_000, 30_000),
                    R::Fix(300),
                    None,
                );
                at += every;
            }
        }
    }

    fn backup(&mut self, w: &mut World<'_>, t0: i64) {
        let start = t0 + w.rng.range(0, 10) as i64 * 60_000;
        // Dump the database, then upload it in parts.
        w.tcp(
            start,
            R::Fix(900_000),
            BACKUP,
            DB,
            5432,
            R::Fix(20_000),
            R::Fix(self.backup_bytes),
            None,
        );
        let parts = w.rng.range(4, 12);
        let host = "acme-backups.s3.eu-west-1.amazonaws.com";
        let mut at = start + 960_000;
        for _ in 0..parts {
            at += w.rng.range(20_000, 90_000) as i64;
            let ip = w.resolve(BACKUP, host, &BUCKET, at);
            let size = self.backup_bytes / parts + w.rng.range(0, 1_000_000);
            w.tcp(
                at,
                R::Uni(10_000, 60_000),
                BACKUP,
                ip,
                443,
                R::Fix(size),
                R::Fix(4_000),
                None,
            );
        }
    }

    fn updates(&mut self, w: &mut World<'_>, t0: i64) {
        let hosts: Vec<IpAddr> = WEB
            .iter()
            .chain(API.iter())
            .copied()
            .chain([NOTIFIER, BACKUP, BASTION])
            .collect();
        for h in hosts {
            let at = t0 + w.rng.range(0, 3_599_999) as i64;
            let name = if w.rng.chance(0.5) {
                "deb.debian.org"
            } else {
                "security.debian.org"
            };
            let ip = w.resolve(h, name, &DEBIAN, at);
            // Index files, then the odd package.
            w.tcp(
                at,
                R::Fix(2_000),
                h,
                ip,
                80,
                R::Fix(1_500),
                R::Log(30_000, 3_000_000),
                None,
            );
            if w.rng.chance(0.3) {
                w.tcp(
                    at + 3_000,
                    R::Fix(8_000),
                    h,
                    ip,
                    80,
                    R::Fix(3_000),
                    R::Log(100_000, 40_000_000),
                    None,
                );
            }
        }
    }

    fn admin(&mut self, w: &mut World<'_>, t0: i64) {
        let targets: Vec<IpAddr> = WEB
            .iter()
            .chain(API.iter())
            .copied()
            .chain([DB, NOTIFIER])
            .collect();
        let target = *w.rng.pick(&targets).unwrap_or(&DB);
        let at = t0 + w.rng.range(0, 3_000_000) as i64;
        w.tcp(
            at,
            R::Uni(60_000, 1_800_000),
            BASTION,
            target,
            22,
            R::Log(5_000, 200_000),
            R::Log(20_000, 2_000_000),
            None,
        );
    }
}
