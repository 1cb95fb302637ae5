//! CPU time outside the service processes: the whole machine's, from `/proc/stat`, and that of
//! a PostgreSQL server running on this machine, from its processes' `/proc/PID/stat`.

use std::collections::BTreeMap;

use anyhow::Context;

/// Clock ticks per second of the times in `/proc` (proc(5)): 100 on x86-64 and arm64.
pub(crate) const USER_HZ: f64 = 100.0;

/// The machine's CPU time since boot, all cores together, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MachineTicks {
    /// Ticks of user, nice, system, irq, softirq and steal time.
    pub(crate) busy: u64,
    /// Ticks of idle and iowait time.
    pub(crate) idle: u64,
}

impl MachineTicks {
    pub(crate) fn read() -> anyhow::Result<MachineTicks> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        parse_machine_ticks(&stat).context("the `cpu` line of /proc/stat is missing or invalid")
    }

    /// Returns the busy seconds and the idle share between `self` and the later reading
    /// `after`.
    pub(crate) fn until(self, after: MachineTicks) -> MachineCpu {
        let busy = after.busy.saturating_sub(self.busy);
        let idle = after.idle.saturating_sub(self.idle);
        let total = busy + idle;
        MachineCpu {
            busy_secs: busy as f64 / USER_HZ,
            idle_share: if total > 0 {
                idle as f64 / total as f64
            } else {
                0.0
            },
        }
    }
}

/// CPU time of the whole machine during a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MachineCpu {
    /// Busy CPU seconds, all cores together: every process and the kernel.
    pub(crate) busy_secs: f64,
    /// Share of the cores' time that was idle, 0 to 1.
    pub(crate) idle_share: f64,
}

/// Parses the first line of `/proc/stat`: `cpu user nice system idle iowait irq softirq steal
/// guest guest_nice`. Guest time is already counted in user time, so it is left out.
fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let field = |index: usize| fields.get(index).copied();
    let busy = field(0)? + field(1)? + field(2)? + field(5)? + field(6)? + field(7).unwrap_or(0);
    let idle = field(3)? + field(4)?;
    Some(MachineTicks { busy, idle })
}

/// Returns utime + stime of a `/proc/PID/stat` line, in clock ticks.
pub(crate) fn process_ticks_of_stat(stat: &str) -> Option<u64> {
    // The command name in brackets may contain spaces, but the fields after it do not.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Returns the command name of a `/proc/PID/stat` line, between the first `(` and the last `)`.
fn command_of_stat(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// Reads the CPU ticks of each process named `postgres` on this machine, by process id: the
/// server and its backends, whose command name stays `postgres` whatever title they set.
pub(crate) fn postgres_ticks() -> BTreeMap<u32, u64> {
    let mut ticks = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return ticks;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        // A process may end between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if command_of_stat(&stat) == Some("postgres")
            && let Some(process_ticks) = process_ticks_of_stat(&stat)
        {
            ticks.insert(pid, process_ticks);
        }
    }
    ticks
}

/// Returns the CPU seconds the `postgres` processes spent between two readings of
/// [`postgres_ticks`]. A process that started in between counts from zero, and one that
/// ended in between is lost. `None` when no such process ran.
pub(crate) fn postgres_secs_between(
    before: &BTreeMap<u32, u64>,
    after: &BTreeMap<u32, u64>,
) -> Option<f64> {
    if after.is_empty() {
        return None;
    }
    let ticks: u64 = after
        .iter()
        .map(|(pid, ticks)| ticks.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum();
    Some(ticks as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ticks_split_into_busy_and_idle() {
        let stat = "cpu  100 5 40 800 20 3 2 10 0 0\ncpu0 50 2 20 400 10 1 1 5 0 0\n";

        let ticks = parse_machine_ticks(stat).unwrap();

        assert_eq!(
            ticks,
            MachineTicks {
                busy: 160,
                idle: 820
            }
        );
    }

    #[test]
    fn machine_share_between_readings() {
        let before = MachineTicks {
            busy: 100,
            idle: 100,
        };
        let after = MachineTicks {
            busy: 250,
            idle: 150,
        };

        let cpu = before.until(after);

        assert_eq!(cpu.busy_secs, 1.5);
        assert_eq!(cpu.idle_share, 0.25);
    }

    #[test]
    fn machine_ticks_reject_a_stat_without_cpu_line() {
        assert_eq!(parse_machine_ticks("intr 1 2 3\n"), None);
        assert_eq!(parse_machine_ticks("cpu  1 2 x 4 5 6 7\n"), None);
    }

    #[test]
    fn command_name_with_spaces_and_brackets() {
        let stat = "4242 (postgres: a (b)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0";

        assert_eq!(command_of_stat(stat), Some("postgres: a (b)"));
        assert_eq!(process_ticks_of_stat(stat), Some(325));
    }

    #[test]
    fn postgres_time_counts_new_processes_from_zero() {
        let before = BTreeMap::from([(10, 500), (11, 40)]);
        let after = BTreeMap::from([(10, 620), (12, 30)]);

        assert_eq!(postgres_secs_between(&before, &after), Some(1.5));
        assert_eq!(postgres_secs_between(&before, &BTreeMap::new()), None);
    }
}
